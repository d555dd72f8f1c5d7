"""`kill -9` of `stj run` in the middle of a scrape leaves nothing running: not Prefect's temporary server, not
Chromium, not chromedriver (the command's watchdog ends them)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from core.processes import free_port
from tests.support import stj_command

pytestmark = pytest.mark.slow


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


def test_kill_9_of_stj_run_leaves_no_process(tmp_path: Path, overrides_for, launch) -> None:
    overrides = [
        *overrides_for(tmp_path),
        f"scrape.base_url=http://127.0.0.1:{free_port()}",
        "scrape.fetcher=selenium",  # every page in headless Chromium
        "scrape.delay_s=0.5",  # slow enough to catch it mid-scrape
    ]
    # no PREFECT_API_URL: the command starts its own temporary Prefect server, which must not outlive it
    child = launch(
        stj_command(["run", "--config", "configs/demo.yaml"], overrides), "run.log", {"PREFECT_API_URL": None}
    )
    deadline = time.monotonic() + 240
    while True:  # which processes run below it is a state, not a line it prints
        below = child.family()[1:]
        if {"chromedriver", "chromium", "prefect server"} <= _kinds(below):
            break
        assert child.proc.poll() is None, child.output.text()[-3000:]
        assert time.monotonic() < deadline, (_kinds(below), child.output.text()[-3000:])
        time.sleep(0.2)
    child.proc.kill()
    child.proc.wait()
    _, alive = psutil.wait_procs(below, timeout=10)
    assert not alive, [(p.pid, " ".join(p.cmdline())[:120]) for p in alive if p.is_running()]
