"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM (to the command alone, as
`kill` sends it) stop each command within seconds: exit code 130, one line naming what was interrupted, no
traceback, no MLflow run left RUNNING or model version made after it, and no process left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psutil
import pytest
import requests
from mlflow import MlflowClient

from core.processes import free_port
from tests.support import SERVING_ON, WORKER_READY, Child, stj_command

pytestmark = pytest.mark.slow
STOP_WITHIN_S = 30


def _start(launch, args: list[str], overrides: list[str], env: dict | None = None) -> Child:
    """``stj ARGS --set …``; with ``args[0] == "make"``, that make target with the overrides in the environment.
    ``env`` entries set to ``None`` are removed from the environment."""
    if args[0] == "make":
        command = args
        env = {
            **(env or {}),
            **{f"STJ_{k.replace('.', '__').upper()}": v for k, v in (o.split("=", 1) for o in overrides)},
        }
    else:
        command = stj_command(args, overrides)
    return launch(command, "command.log", env)


def _wait_for(condition: Callable[[], bool], child: Child, timeout_s: float = 300) -> None:
    """Until ``condition()`` (a state only a query can tell, such as a run in the store)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert child.proc.poll() is None, child.output.text()[-3000:]
        assert time.monotonic() < deadline, child.output.text()[-3000:]
        time.sleep(0.2)


def _interrupt(child: Child, how: str) -> tuple[str, list[psutil.Process]]:
    """Send the signal; wait for the command to end; return its output and what ran below it."""
    proc = child.proc
    below = child.family()[1:]
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"still running {STOP_WITHIN_S} s after {how}: {child.output.text()[-3000:]}")
    return child.output.join(), below


def _assert_clean_stop(child: Child, output: str, below: list[psutil.Process], what: str, code: int = 130) -> None:
    assert child.proc.returncode == code, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith("stj: interrupted")]
    assert len(lines) == 1 and lines[0].startswith(f"stj: interrupted {what}"), output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    _, alive = psutil.wait_procs(below, timeout=10)
    assert not alive, [" ".join(p.cmdline())[:100] for p in alive if p.is_running()]


def _store(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def _runs(client: MlflowClient, query: str = "") -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()], query)


# One command per stage, stopped by one signal: both signals only where the command's behaviour differs (make
# forwards SIGTERM but not Ctrl-C; `stj schedule` and `stj serve` handle each in their own way). How each signal
# becomes the interrupt is unit-tested in tests/flows/test_signals.py.


def test_run_stops_mid_scrape(tmp_path: Path, overrides_for, launch, stj_env) -> None:
    """The one test that starts from an empty data folder: the scrape is what it interrupts."""
    overrides = [*overrides_for(tmp_path), f"scrape.base_url=http://127.0.0.1:{free_port()}", "scrape.delay_s=0.5"]
    child = _start(launch, ["run", "-c", "configs/demo.yaml"], overrides, stj_env)
    child.output.wait_for(r"scraping|saree")
    time.sleep(2)  # well into the scrape: 0.5 s between pages of 36 photos
    output, below = _interrupt(child, "ctrl-c")
    _assert_clean_stop(child, output, below, "stj run during scrape")
    assert not (tmp_path / "mlflow.db").exists() or _store(tmp_path).search_registered_models() == []


def _training_overrides(root: Path, overrides_for, scraped) -> list[str]:
    """The tiny config on a copy of the session's scraped photos, with training that outlasts the test."""
    scraped(root)
    return [
        *overrides_for(root),
        f"scrape.base_url=http://127.0.0.1:{free_port()}",
        "train.epochs=3000",  # training outlasts the test's patience
        "train.patience=3000",
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


def test_run_stops_mid_training_and_marks_the_run_killed(
    tmp_path: Path, overrides_for, scraped, launch, stj_env
) -> None:
    overrides = _training_overrides(tmp_path, overrides_for, scraped)
    child = _start(launch, ["run", "-c", "configs/demo.yaml"], overrides, stj_env)
    _wait_for(_training(tmp_path), child)
    output, below = _interrupt(child, "sigterm")
    _assert_clean_stop(child, output, below, "stj run during train")
    _assert_runs_killed_and_nothing_registered(tmp_path)


def test_run_stops_mid_embedding_and_starts_no_mlflow_run(
    tmp_path: Path, overrides_for, scraped, launch, stj_env
) -> None:
    overrides = [
        *_training_overrides(tmp_path, overrides_for, scraped),
        "catalog.products_per_class=60",  # ~180 photos at 160 px: embedding lasts several seconds
        "scrape.max_pages=10",
        "train.image_size=160",
    ]
    child = _start(launch, ["run", "-c", "configs/demo.yaml"], overrides, stj_env)
    child.output.wait_for("inference runtime:")  # embedding starts now
    time.sleep(1)
    output, below = _interrupt(child, "ctrl-c")
    _assert_clean_stop(child, output, below, "stj run during train")
    assert "embeddings:" not in output, "embedding finished before the interrupt: the test proves nothing"
    assert not (tmp_path / "mlflow.db").exists() or _runs(_store(tmp_path)) == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_make_demo_stops_mid_training(tmp_path: Path, overrides_for, scraped, launch, stj_env, how: str) -> None:
    # make's own exit: re-raised SIGINT on Ctrl-C; on SIGTERM it forwards the signal to its child (stj) first
    # -o: the set-up targets count as done (the suite runs in the installed checkout; never pip or apt here)
    command = ["make", "--no-print-directory", "-o", "install", "-o", "system-deps", "demo"]
    child = _start(launch, command, _training_overrides(tmp_path, overrides_for, scraped), stj_env)
    _wait_for(_training(tmp_path), child)
    output, below = _interrupt(child, how)
    signum = signal.SIGINT if how == "ctrl-c" else signal.SIGTERM
    _assert_clean_stop(child, output, below, "stj demo during train", code=-signum)
    _assert_runs_killed_and_nothing_registered(tmp_path)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_schedule_stops_mid_scheduled_run(tmp_path: Path, overrides_for, scraped, launch, stj_env, how: str) -> None:
    """The deployment is run at once, not when its cron falls due (a real cron: tests/e2e/test_prefect_server.py)."""
    from prefect.deployments import run_deployment

    name = f"stj-interrupt-{how}"
    env = {**stj_env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    args = ["schedule", "-c", "configs/demo.yaml", "--cron", "0 3 * * 1", "--name", name]
    child = _start(launch, args, _training_overrides(tmp_path, overrides_for, scraped), env)
    child.output.wait_for(f"stj-pipeline/{name}", timeout=120)
    run_deployment(f"stj-pipeline/{name}", timeout=0)
    _wait_for(_training(tmp_path), child, timeout_s=400)
    output, below = _interrupt(child, how)
    _assert_clean_stop(child, output, below, "stj schedule")
    _assert_runs_killed_and_nothing_registered(tmp_path)
    assert "scrape summary" in output  # the scheduled run's own process logs STJ's lines too


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_serve_stops(registry, launch, how: str) -> None:
    child = _start(launch, ["serve", "-c", "configs/demo.yaml", "--port", "0"], registry.overrides)
    child.output.wait_for(SERVING_ON, timeout=180)
    child.output.wait_for(WORKER_READY, timeout=180)
    output, below = _interrupt(child, how)
    _assert_clean_stop(child, output, below, "stj serve")
    assert "Control socket" not in output  # gunicorn's per-user socket would be shared by all servers


def test_catalog_stops(launch) -> None:
    child = _start(launch, ["catalog", "-c", "configs/demo.yaml", "--port", "0"], [])
    child.output.wait_for("stj: catalog at", timeout=120)
    output, below = _interrupt(child, "ctrl-c")
    _assert_clean_stop(child, output, below, "stj catalog")


def test_demo_serves_its_champion_in_the_same_process_then_stops(
    tmp_path: Path, overrides_for, scraped, launch, stj_env
) -> None:
    scraped(tmp_path)
    port = free_port()
    overrides = [*overrides_for(tmp_path), f"scrape.base_url=http://127.0.0.1:{free_port()}", f"serve.port={port}"]
    child = _start(launch, ["demo", "-c", "configs/demo.yaml"], overrides, stj_env)
    child.output.wait_for(SERVING_ON, timeout=400)
    child.output.wait_for(WORKER_READY, timeout=180)
    output = child.output.text()
    assert "Serving stj-classifier@champion next." in output, output[-3000:]
    assert f"http://127.0.0.1:{port}/predict" in output, output[-3000:]
    ready = requests.get(f"http://127.0.0.1:{port}/ready", timeout=10)
    assert ready.ok and ready.json()["model"]["version"] == "1", ready.text
    output, below = _interrupt(child, "ctrl-c")
    _assert_clean_stop(child, output, below, "stj serve")  # the same process, now `stj serve` (exec)
