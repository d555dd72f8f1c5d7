"""Soak test: the STJ server (nginx + gunicorn) for a fixed time (10 minutes) under 16 clients mixing good
uploads, bad and worst-case ones (tiny files declaring huge pictures, cut JPEGs, oversized bodies), while
slow clients dribble headers and the model alias flips between two versions every 30 s.

Reports requests, status counts, 5xx (goal 0), connection errors, p50/p99, the server's RSS at start (after
warm-up) and end (goal: growth < 10 %), and the size of the server's temp folder at start and end (goal: no
growth). The alias flips happen in a copy of the registry, never in yours. Needs the demo model
(`stj run --config configs/demo.yaml`; two registered versions for the flips).

Usage: .venv/bin/python benchmarks/soak.py [--minutes 10] [--clients 16] [--slow-clients 2]
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

from mlflow import MlflowClient
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import free_port, hammer, rss_kib, start_stj_server, wait_ready  # noqa: E402
from benchmarks.uploads import worst_cases  # noqa: E402
from flows.settings import load_run_config  # noqa: E402


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _dribble(port: int, stop: threading.Event, dropped: list[int]) -> None:
    """A slow client: sends a request's headers a byte every 0.5 s until the server hangs up, then again."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), 5) as conn:
                conn.sendall(b"POST /predict HTTP/1.1\r\n")
                for byte in b"Host: x\r\nX-Slow: " + b"a" * 200:
                    if stop.wait(0.5):
                        return
                    conn.sendall(bytes([byte]))
        except OSError:
            dropped.append(1)  # the server gave up on us (client_timeout_s)


def _flip(client: MlflowClient, name: str, versions: list[str], every_s: float, stop: threading.Event, done: list):
    while not stop.wait(every_s):
        target = versions[len(done) % 2]
        client.set_registered_model_alias(name, "champion", target)
        done.append(target)


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
    parser.add_argument("--slow-clients", type=int, default=2)
    parser.add_argument("--flip-every-s", type=float, default=30)
    args = parser.parse_args()
    config = load_run_config(args.config)
    good = [p.read_bytes() for p in sorted((Path(config.project.data_dir) / "raw").rglob("*.jpg"))[:32]]
    db = Path(config.tracking.uri.removeprefix("sqlite:///"))
    if not good or not db.exists():
        sys.exit("no photos or registry: run `stj run --config configs/demo.yaml` first")
    bad = bad_bodies(good[0]) + [(data, "image/jpeg") for data in worst_cases().values()]
    with tempfile.TemporaryDirectory(prefix="stj-soak-") as work:
        work = Path(work)
        shutil.copy(db, work / "mlflow.db")  # flips move the copy's alias; artifacts are shared, read-only
        uri = f"sqlite:///{work / 'mlflow.db'}"
        registry = MlflowClient(uri)
        name = config.tracking.model_name
        versions = sorted((str(v.version) for v in registry.search_model_versions(f"name = '{name}'")), key=int)[-2:]
        temp = work / "tmp"
        temp.mkdir()
        port = free_port()
        proc = start_stj_server(
            args.config,
            port,
            args.clients,
            extra=[f"tracking.uri={uri}", "serve.reload_interval_s=2"],
            env={"TMPDIR": str(temp)},
        )
        url = f"http://127.0.0.1:{port}/predict"

        def send(session, i):
            if i % 3 == 2:  # one request in three is bad
                body, kind = bad[(i // 3) % len(bad)]  # every bad kind in turn
            else:
                body, kind = good[i % len(good)], "image/jpeg"
            return session.post(url, data=body, headers={"Content-Type": kind}, timeout=60).status_code

        stop, dropped, flips = threading.Event(), [], []
        helpers = [threading.Thread(target=_dribble, args=(port, stop, dropped)) for _ in range(args.slow_clients)]
        if len(versions) == 2:
            helpers.append(
                threading.Thread(target=_flip, args=(registry, name, versions, args.flip_every_s, stop, flips))
            )
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", proc)
            hammer(send, args.clients, 20)  # warm-up before the baseline readings
            start_rss, start_temp = rss_kib(proc.pid), _folder_bytes(temp)
            for helper in helpers:
                helper.start()
            result = hammer(send, args.clients, args.minutes * 60)
            end_rss, end_temp = rss_kib(proc.pid), _folder_bytes(temp)
        finally:
            stop.set()
            for helper in helpers:
                helper.join(10)
            proc.terminate()
            proc.wait()
    growth = 100 * (end_rss - start_rss) / max(1, start_rss)
    fivexx = sum(n for s, n in result["statuses"].items() if s >= 500)
    print(
        f"soak {args.minutes:g} min, {args.clients} clients + {args.slow_clients} slow: {result['requests']} requests "
        f"({result['rps']:.1f}/s), statuses {dict(sorted(result['statuses'].items()))}"
    )
    print(
        f"5xx: {fivexx}; connection errors: {result['statuses'].get(-1, 0)}; p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms; slow clients dropped by the server: {len(dropped)}; "
        f"alias flips: {len(flips)} (versions {', '.join(versions)})"
    )
    print(f"RSS: {start_rss / 1024:.0f} MiB -> {end_rss / 1024:.0f} MiB ({growth:+.1f} %)")
    print(f"temp folder: {start_temp} -> {end_temp} bytes")


if __name__ == "__main__":
    main()
