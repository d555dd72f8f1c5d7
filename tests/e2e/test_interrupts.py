"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM (to the command alone, as
`kill` sends it) stop each command within seconds: exit code 130, one line naming what was interrupted, no
traceback, no MLflow run left RUNNING or model version made after it, and no process left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psutil
import pytest
import requests
from mlflow import MlflowClient

from core.processes import free_port

pytestmark = pytest.mark.slow
STOP_WITHIN_S = 30


def _start(args: list[str], overrides: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """``stj ARGS --set …``; with ``args[0] == "make"``, that make target with the overrides in the environment.
    ``env`` entries set to ``None`` are removed from the environment."""
    if args[0] == "make":
        command = args
        env = {
            **(env or {}),
            **{f"STJ_{k.replace('.', '__').upper()}": v for k, v in (o.split("=", 1) for o in overrides)},
        }
    else:
        command = [sys.executable, "-m", "flows.cli", *args, *(arg for o in overrides for arg in ("--set", o))]
    return subprocess.Popen(
        command,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: SIGINT to the group is a terminal's Ctrl-C
        env={k: v for k, v in {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}.items() if v is not None},
    )


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _interrupt(proc: subprocess.Popen, how: str, log: Path) -> tuple[str, list[psutil.Process]]:
    """Send the signal; wait for the command to end; return its output and what ran below it."""
    below = psutil.Process(proc.pid).children(recursive=True)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"still running {STOP_WITHIN_S} s after {how}: {log.read_text()[-3000:]}")
    return log.read_text(), below


def _assert_clean_stop(
    proc: subprocess.Popen, output: str, below: list[psutil.Process], what: str, code: int = 130
) -> None:
    assert proc.returncode == code, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith("stj: interrupted")]
    assert len(lines) == 1 and lines[0].startswith(f"stj: interrupted {what}"), output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    _, alive = psutil.wait_procs(below, timeout=10)
    assert not alive, [" ".join(p.cmdline())[:100] for p in alive if p.is_running()]


def _store(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def _runs(client: MlflowClient, query: str = "") -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()], query)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_run_stops_mid_scrape(tmp_path: Path, overrides_for, how: str) -> None:
    overrides = [*overrides_for(tmp_path), f"scrape.base_url=http://127.0.0.1:{free_port()}", "scrape.delay_s=0.5"]
    log = tmp_path / "run.log"
    proc = _start(["run", "-c", "configs/demo.yaml"], overrides, log)
    manifest = tmp_path / "data" / "manifest.csv"
    _wait_for(lambda: manifest.exists() or "scraping" in log.read_text() or "saree" in log.read_text(), proc, log)
    time.sleep(2)  # well into the scrape
    output, below = _interrupt(proc, how, log)
    _assert_clean_stop(proc, output, below, "stj run during scrape")
    assert not (tmp_path / "mlflow.db").exists() or _store(tmp_path).search_registered_models() == []


def _training_overrides(root: Path, overrides_for) -> list[str]:
    return [
        *overrides_for(root),
        f"scrape.base_url=http://127.0.0.1:{free_port()}",
        "train.compare_backbones=[]",
        "train.epochs=100000",  # training outlasts the test's patience
        "train.patience=100000",
    ]


def _training(root: Path) -> Callable[[], bool]:
    """True once the store under ``root`` has a run in progress."""

    def training() -> bool:
        # read-only SQL, not an MlflowClient: a client would race the command's own schema migration
        try:
            with closing(sqlite3.connect(f"file:{root / 'mlflow.db'}?mode=ro", uri=True)) as db:
                return bool(db.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0])
        except sqlite3.Error:  # not created yet, or its tables not yet
            return False

    return training


def _assert_runs_killed_and_nothing_registered(root: Path) -> None:
    client = _store(root)
    runs = _runs(client)
    assert runs and {r.info.status for r in runs} == {"KILLED"}, [(r.info.run_name, r.info.status) for r in runs]
    assert client.search_model_versions() == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_run_stops_mid_training_and_marks_the_run_killed(tmp_path: Path, overrides_for, how: str) -> None:
    log = tmp_path / "run.log"
    proc = _start(["run", "-c", "configs/demo.yaml"], _training_overrides(tmp_path, overrides_for), log)
    _wait_for(_training(tmp_path), proc, log)
    output, below = _interrupt(proc, how, log)
    _assert_clean_stop(proc, output, below, "stj run during train")
    _assert_runs_killed_and_nothing_registered(tmp_path)


def test_run_stops_mid_embedding_and_starts_no_mlflow_run(tmp_path: Path, overrides_for) -> None:
    overrides = [
        *_training_overrides(tmp_path, overrides_for),
        "catalog.products_per_class=60",  # ~180 photos at 160 px: embedding lasts several seconds
        "scrape.max_pages=10",
        "train.image_size=160",
    ]
    log = tmp_path / "run.log"
    proc = _start(["run", "-c", "configs/demo.yaml"], overrides, log)
    _wait_for(lambda: "inference runtime:" in log.read_text(), proc, log)  # embedding starts now
    time.sleep(1)
    output, below = _interrupt(proc, "ctrl-c", log)
    _assert_clean_stop(proc, output, below, "stj run during train")
    assert "embeddings:" not in output, "embedding finished before the interrupt: the test proves nothing"
    assert not (tmp_path / "mlflow.db").exists() or _runs(_store(tmp_path)) == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_make_demo_stops_mid_training(tmp_path: Path, overrides_for, how: str) -> None:
    # make's own exit: re-raised SIGINT on Ctrl-C; on SIGTERM it forwards the signal to its child (stj) first
    log = tmp_path / "demo.log"
    # -o: the set-up targets count as done (the suite runs in the installed checkout; never pip or apt here)
    command = ["make", "--no-print-directory", "-o", "install", "-o", "system-deps", "demo"]
    proc = _start(command, _training_overrides(tmp_path, overrides_for), log)
    _wait_for(_training(tmp_path), proc, log)
    output, below = _interrupt(proc, how, log)
    signum = signal.SIGINT if how == "ctrl-c" else signal.SIGTERM
    _assert_clean_stop(proc, output, below, "stj demo during train", code=-signum)
    _assert_runs_killed_and_nothing_registered(tmp_path)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_schedule_stops_mid_scheduled_run(tmp_path: Path, overrides_for, how: str) -> None:
    # no PREFECT_API_URL: stj's temporary server must itself turn the cron into runs
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_API_URL": None}
    args = ["schedule", "-c", "configs/demo.yaml", "--cron", "* * * * *", "--name", "stj-interrupt-test"]
    log = tmp_path / "schedule.log"
    proc = _start(args, _training_overrides(tmp_path, overrides_for), log, env)
    _wait_for(_training(tmp_path), proc, log, timeout_s=400)
    output, below = _interrupt(proc, how, log)
    _assert_clean_stop(proc, output, below, "stj schedule")
    _assert_runs_killed_and_nothing_registered(tmp_path)
    assert "scrape summary" in output  # the scheduled run's own process logs STJ's lines too


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_serve_stops(tmp_path: Path, trained, how: str) -> None:
    _, overrides, _ = trained
    log = tmp_path / "serve.log"
    proc = _start(["serve", "-c", "configs/demo.yaml", "--port", str(free_port())], overrides, log)
    _wait_for(lambda: "stj: serving on" in log.read_text() and "loaded" in log.read_text(), proc, log, 180)
    output, below = _interrupt(proc, how, log)
    _assert_clean_stop(proc, output, below, "stj serve")
    assert "Control socket" not in output  # gunicorn's per-user socket would be shared by all servers


def test_catalog_stops(tmp_path: Path) -> None:
    log = tmp_path / "catalog.log"
    proc = _start(["catalog", "-c", "configs/demo.yaml", "--port", str(free_port())], [], log)
    _wait_for(lambda: "stj: catalog at" in log.read_text(), proc, log, 120)
    output, below = _interrupt(proc, "ctrl-c", log)
    _assert_clean_stop(proc, output, below, "stj catalog")


def test_demo_serves_its_champion_in_the_same_process_then_stops(tmp_path: Path, overrides_for) -> None:
    port = free_port()
    overrides = [*overrides_for(tmp_path), f"scrape.base_url=http://127.0.0.1:{free_port()}", f"serve.port={port}"]
    log = tmp_path / "demo.log"
    proc = _start(["demo", "-c", "configs/demo.yaml"], overrides, log)
    _wait_for(lambda: "stj: serving on" in log.read_text() and "loaded" in log.read_text(), proc, log, 400)
    output = log.read_text()
    assert "Serving stj-classifier@champion next." in output, output[-3000:]
    assert f"http://127.0.0.1:{port}/predict" in output, output[-3000:]
    ready = requests.get(f"http://127.0.0.1:{port}/ready", timeout=10)
    assert ready.ok and ready.json()["model"]["version"] == "1", ready.text
    output, below = _interrupt(proc, "ctrl-c", log)
    _assert_clean_stop(proc, output, below, "stj serve")  # the same process, now `stj serve` (exec)
