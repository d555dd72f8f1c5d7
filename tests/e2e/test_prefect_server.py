"""Scheduled runs that run: `stj schedule` against a real `prefect server` process gets runs from its cron, and
a run completes and registers a model version."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
DEPLOYMENT = "stj-cron-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict[str, str | None], log: Path) -> subprocess.Popen:
    """A process in a session of its own (so it and its children are stopped together), output to ``log``;
    ``env`` entries that are ``None`` are removed from the environment."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.Popen(args, env=merged, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[str]:
    """A real Prefect server on its own sqlite database under ``tmp_path``; yields its API URL."""
    port = _free_port()
    env = {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": None,
    }
    log = tmp_path / "server.log"
    proc = _start(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{api}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(1)
        else:
            pytest.fail(f"prefect server did not start: {log.read_text()[-3000:]}")
        yield api
        assert "Can't evaluate bulk DML" not in log.read_text(), log.read_text()[-3000:]
    finally:
        _stop(proc)


def _runs(api: str) -> list[dict]:
    deployments = requests.post(f"{api}/deployments/filter", json={"deployments": {"name": {"any_": [DEPLOYMENT]}}})
    if not deployments.ok or not deployments.json():
        return []
    flow_runs = {"deployment_id": {"any_": [deployments.json()[0]["id"]]}}
    return requests.post(f"{api}/flow_runs/filter", json={"flow_runs": flow_runs}, timeout=10).json()


def test_a_cron_deployment_gets_scheduled_runs_and_one_completes(tmp_path, prefect_server, overrides_for) -> None:
    overrides = [
        *overrides_for(tmp_path),
        f"scrape.base_url=http://127.0.0.1:{_free_port()}",  # the flow starts its own catalog there
        "train.compare_backbones=[]",
    ]
    command = [sys.executable, "-m", "flows.cli", "schedule", "--config", "configs/demo.yaml", "--cron", "* * * * *"]
    command += ["--name", DEPLOYMENT, *(a for o in overrides for a in ("--set", o))]
    log = tmp_path / "schedule.log"
    proc = _start(command, {"PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "prefect")}, log)
    try:
        deadline, runs = time.monotonic() + 480, []
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            runs = _runs(prefect_server)
            if any(r["state_type"] == "COMPLETED" for r in runs) or any(r["state_type"] == "FAILED" for r in runs):
                break
            time.sleep(3)
        states = {r["name"]: r["state_type"] for r in runs}
        assert any(r["auto_scheduled"] for r in runs), f"the scheduler made no run: {states}"
        assert "COMPLETED" in states.values(), f"{states}\n{log.read_text()[-3000:]}"
        deployment = requests.post(
            f"{prefect_server}/deployments/filter", json={"deployments": {"name": {"any_": [DEPLOYMENT]}}}, timeout=10
        ).json()[0]
        assert deployment["global_concurrency_limit"]["limit"] == 1  # runs never overlap on one data folder
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    finally:
        _stop(proc)
    version = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").get_model_version("stj-classifier", "1")
    assert version.run_id
