"""Serving benchmark: STJ's server vs `mlflow models serve` on the same registered model and photos.

Both serve `models:/stj-classifier@champion` from the demo store (run `stj run --config configs/demo.yaml`
first). STJ takes the JPEG bytes; MLflow's server takes decoded pixels as JSON (its API). Each is driven at
1 and 16 concurrent clients for a fixed time; requests/s, p50/p99 latency and errors are printed, with the
ratio STJ/MLflow.

Usage: .venv/bin/python benchmarks/serve.py [--config configs/demo.yaml] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import free_port, hammer, start_stj_server, wait_ready  # noqa: E402
from core.model_input import decode_image  # noqa: E402
from flows.settings import load_run_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    config = load_run_config(args.config)
    photos = sorted((Path(config.project.data_dir) / "raw").rglob("*.jpg"))[:64]
    if not photos:
        sys.exit("no photos: run `stj run --config configs/demo.yaml` first")
    blobs = [p.read_bytes() for p in photos]
    size = config.train.image_size
    pixels_json = [json.dumps({"inputs": decode_image(b, size)[None].tolist()}) for b in blobs[:16]]
    results = {}

    port = free_port()
    ours = start_stj_server(args.config, port, 16)
    results.update(_measure("stj", ours, port, "/ready", "/predict", blobs, "image/jpeg", args.seconds))

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": config.tracking.uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its uvicorn
    }
    theirs = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            config.model_uri,
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results.update(
        _measure("mlflow", theirs, port, "/ping", "/invocations", pixels_json, "application/json", args.seconds)
    )

    header = f"{'server':8s} {'clients':>7s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s}"
    print(f"{header} {'load-generator cores':>21s}")
    for (name, clients), r in results.items():
        print(
            f"{name:8s} {clients:7d} {r['rps']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['errors']:6d} "
            f"{r['client_cores']:21.2f}"
        )
    for clients in (1, 16):
        ratio = results[("stj", clients)]["rps"] / max(1e-9, results[("mlflow", clients)]["rps"])
        print(f"ratio stj/mlflow at {clients} client(s): {ratio:.1f}x")


def _measure(
    name: str, proc: subprocess.Popen, port: int, ready: str, path: str, bodies: list, content_type: str, seconds: float
) -> dict:
    """Drive one running server at 1 and 16 clients, then stop it."""
    out = {}
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready}", proc)
        url = f"http://127.0.0.1:{port}{path}"
        for clients in (1, 16):
            out[(name, clients)] = hammer(
                lambda s, i: (
                    s.post(
                        url, data=bodies[i % len(bodies)], headers={"Content-Type": content_type}, timeout=120
                    ).status_code
                ),
                clients,
                seconds,
            )
    finally:
        proc.terminate()
        proc.wait()
    return out


if __name__ == "__main__":
    main()
