"""Scheduled runs that run: `stj schedule` against a real `prefect server` process gets runs from its cron, and
a run completes and registers a model version."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from core.processes import free_port
from tests.support import UNMEASURED, end_group, stj_command

pytestmark = pytest.mark.slow
DEPLOYMENT = "stj-cron-test"


@pytest.fixture
def prefect_server(tmp_path: Path, launch) -> Iterator[str]:
    """A real Prefect server on its own sqlite database under ``tmp_path``; yields its API URL."""
    port = free_port()
    env = {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": None,
        **UNMEASURED,  # runs none of the product's code
    }
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = launch(command, "server.log", env)
    server.output.wait_for("Check out the dashboard", timeout=180)  # printed before uvicorn binds
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while not _healthy(api):
        assert server.proc.poll() is None and time.monotonic() < deadline, server.output.text()[-3000:]
        time.sleep(0.2)
    yield api
    assert "Can't evaluate bulk DML" not in server.output.text(), server.output.text()[-3000:]


def _healthy(api: str) -> bool:
    try:
        return requests.get(f"{api}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _runs(api: str) -> list[dict]:
    deployments = requests.post(f"{api}/deployments/filter", json={"deployments": {"name": {"any_": [DEPLOYMENT]}}})
    if not deployments.ok or not deployments.json():
        return []
    flow_runs = {"deployment_id": {"any_": [deployments.json()[0]["id"]]}}
    return requests.post(f"{api}/flow_runs/filter", json={"flow_runs": flow_runs}, timeout=10).json()


def test_a_cron_deployment_gets_scheduled_runs_and_one_completes(
    tmp_path, prefect_server, overrides_for, scraped, launch
) -> None:
    """The suite's one test that waits for a cron to fall due (up to a minute)."""
    scraped(tmp_path)
    overrides = [*overrides_for(tmp_path), f"scrape.base_url=http://127.0.0.1:{free_port()}"]
    command = ["schedule", "--config", "configs/demo.yaml", "--cron", "* * * * *", "--name", DEPLOYMENT]
    env = {"PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "prefect")}
    schedule = launch(stj_command(command, overrides), "schedule.log", env)
    proc = schedule.proc
    try:
        deadline, runs = time.monotonic() + 480, []
        while time.monotonic() < deadline:
            assert proc.poll() is None, schedule.output.text()[-3000:]
            runs = _runs(prefect_server)
            if any(r["state_type"] == "COMPLETED" for r in runs) or any(r["state_type"] == "FAILED" for r in runs):
                break
            time.sleep(3)
        states = {r["name"]: r["state_type"] for r in runs}
        assert any(r["auto_scheduled"] for r in runs), f"the scheduler made no run: {states}"
        assert "COMPLETED" in states.values(), f"{states}\n{schedule.output.text()[-3000:]}"
        deployment = requests.post(
            f"{prefect_server}/deployments/filter", json={"deployments": {"name": {"any_": [DEPLOYMENT]}}}, timeout=10
        ).json()[0]
        assert deployment["global_concurrency_limit"]["limit"] == 1  # runs never overlap on one data folder
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    finally:
        end_group(proc)
    version = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").get_model_version("stj-classifier", "1")
    assert version.run_id
