"""Shared load-generation helpers for the serving benchmarks: start a server, hammer it, summarise."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stj_server(
    config_path: str, port: int, threads: int, extra: list[str] = (), env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`stj serve` on ``port`` with ``threads`` gunicorn threads, no hot-reload polling, and ``extra`` overrides."""
    import os
    import sys

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "serve",
            "--config",
            config_path,
            "--set",
            f"serve.port={port}",
            "--set",
            f"serve.threads={threads}",
            "--set",
            "serve.reload_interval_s=0",
            *(arg for override in extra for arg in ("--set", override)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (KiB), from /proc."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def hammer(send: Callable[[requests.Session, int], int], clients: int, seconds: float) -> dict:
    """Run ``clients`` threads calling ``send(session, i)`` (returns the HTTP status) for ``seconds``."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        session = requests.Session()
        i = index
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status = send(session, i)
            except OSError:  # requests' errors are OSErrors too
                status = -1
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
            i += clients

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    began, cpu_began = time.monotonic(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    client_cores = (time.process_time() - cpu_began) / wall  # what the load generator took from the machine
    lat = np.array(latencies) * 1000
    return {
        "requests": len(lat),
        "rps": len(lat) / wall,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else 0,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else 0,
        "statuses": statuses,
        "errors": sum(n for s, n in statuses.items() if s < 0 or s >= 500),
        "client_cores": client_cores,
    }


def post_many(port: int, path: str, bodies: list[bytes], content_type: str, clients: int, seconds: float) -> dict:
    """Like :func:`hammer`, for POSTs of ``bodies`` to ``path``, over raw keep-alive sockets: each request's bytes
    are built once, so the load generator takes ~0.01 cores instead of the ~0.1-0.2 ``requests`` needs (on a
    2-core machine that CPU would otherwise be taken from the server being measured)."""
    head = "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {n}\r\n\r\n"
    requests_bytes = [head.format(path=path, ctype=content_type, n=len(b)).encode() + b for b in bodies]
    local = threading.local()

    def send(_session, i: int) -> int:
        try:
            return exchange(i)
        except OSError:
            local.conn = None  # a fresh connection next time
            raise

    def exchange(i: int) -> int:
        if getattr(local, "conn", None) is None:
            local.conn = socket.create_connection(("127.0.0.1", port), timeout=120)
            local.reader = local.conn.makefile("rb")
        local.conn.sendall(requests_bytes[i % len(requests_bytes)])
        status, length, close = int(local.reader.readline().split()[1]), 0, False
        while (line := local.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            close |= name.strip().lower() == b"connection" and value.strip().lower() == b"close"
        local.reader.read(length)
        if close:
            local.conn.close()
            local.conn = None
        return status

    return hammer(send, clients, seconds)
