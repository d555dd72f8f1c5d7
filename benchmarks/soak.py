"""Soak test: the STJ server under 16 clients mixing good and bad uploads for a fixed time (10 minutes).

Reports requests, status counts, 5xx count (must be 0) and the server's RSS at start (after warm-up) and
end (growth must stay under 10 %). Needs the demo model (`stj run --config configs/demo.yaml`).

Usage: .venv/bin/python benchmarks/soak.py [--minutes 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import free_port, hammer, rss_kib, start_stj_server, wait_ready  # noqa: E402
from flows.settings import load_run_config  # noqa: E402


def bad_bodies(good: bytes) -> list[tuple[bytes, str]]:
    one = io.BytesIO()
    Image.new("RGB", (1, 1)).save(one, "PNG")
    return [
        (b"", "image/jpeg"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/jpeg"),
        (good[:500], "image/jpeg"),
        (b"GIF89a" + b"\x00" * 50, "image/gif"),
        (one.getvalue(), "image/png"),
        (b"{}", "application/json"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    config = load_run_config(args.config)
    good = [p.read_bytes() for p in sorted((Path(config.project.data_dir) / "raw").rglob("*.jpg"))[:32]]
    if not good:
        sys.exit("no photos: run `stj run --config configs/demo.yaml` first")
    bad = bad_bodies(good[0])
    port = free_port()
    proc = start_stj_server(args.config, port, args.clients)
    url = f"http://127.0.0.1:{port}/predict"

    def send(session, i):
        if i % 3 == 2:  # one request in three is bad
            body, kind = bad[(i // 3) % len(bad)]  # every bad kind in turn
        else:
            body, kind = good[i % len(good)], "image/jpeg"
        return session.post(url, data=body, headers={"Content-Type": kind}, timeout=60).status_code

    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", proc)
        hammer(send, args.clients, 20)  # warm-up before the baseline memory reading
        start_rss = rss_kib(proc.pid)
        result = hammer(send, args.clients, args.minutes * 60)
        end_rss = rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    growth = 100 * (end_rss - start_rss) / max(1, start_rss)
    fivexx = sum(n for s, n in result["statuses"].items() if s >= 500)
    print(
        f"soak {args.minutes:g} min, {args.clients} clients: {result['requests']} requests "
        f"({result['rps']:.1f}/s), statuses {dict(sorted(result['statuses'].items()))}"
    )
    print(
        f"5xx: {fivexx}; connection errors: {result['statuses'].get(-1, 0)}; p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms"
    )
    print(f"RSS: {start_rss / 1024:.0f} MiB -> {end_rss / 1024:.0f} MiB ({growth:+.1f} %)")


if __name__ == "__main__":
    main()
