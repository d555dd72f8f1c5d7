"""`kill -9` of `stj run` in the middle of a scrape leaves nothing running: not Prefect's temporary server, not
Chromium, not chromedriver (the command's watchdog ends them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kinds(processes: list[psutil.Process]) -> set[str]:
    kinds = set()
    for process in processes:
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "chromedriver" in line:
            kinds.add("chromedriver")
        elif "chromium" in line or "chrome" in process.name():
            kinds.add("chromium")
        elif "prefect" in line and "server" in line or "uvicorn" in line:
            kinds.add("prefect server")
    return kinds


def test_kill_9_of_stj_run_leaves_no_process(tmp_path: Path, overrides_for) -> None:
    overrides = [
        *overrides_for(tmp_path),
        f"scrape.base_url=http://127.0.0.1:{_free_port()}",
        "scrape.fetcher=selenium",  # every page in headless Chromium
        "scrape.delay_s=0.5",  # slow enough to catch it mid-scrape
    ]
    sets = [arg for o in overrides for arg in ("--set", o)]
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", "--config", "configs/demo.yaml", *sets],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            below = psutil.Process(proc.pid).children(recursive=True)
            if {"chromedriver", "chromium", "prefect server"} <= _kinds(below):
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (_kinds(below), log.read_text()[-3000:])
            time.sleep(0.2)
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(below, timeout=10)
        assert not alive, [(p.pid, " ".join(p.cmdline())[:120]) for p in alive if p.is_running()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
