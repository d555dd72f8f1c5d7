"""The team setup end to end: `make team-up` (PostgreSQL, Prefect and MLflow servers on it, Dask, a process
worker); `stj deploy --run` runs the pipeline through the worker with the Dask runner; the MLflow server's
registry has the champion; two `stj serve` replicas pointed at it answer /predict, share one PostgreSQL
database (a user signed in on one is signed in on the other, with the same history) and both follow the alias
when it moves; `make team-down` leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests
from mlflow import MlflowClient

from core.processes import free_port
from tests.support import SERVING_ON, WORKER_READY, Child, stj_command

pytestmark = pytest.mark.slow


def _make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # -o: the set-up targets count as done (the suite runs in the installed checkout)
    command = ["make", "--no-print-directory", "-o", "install", "-o", "system-deps", target]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)


def _read_env(file: Path) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in file.read_text().splitlines() if line)
    return dict(pairs)


def _running_below(folder: Path) -> list[str]:
    """Processes whose command line names the team folder (PostgreSQL, the servers' state)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(folder) in cmdline:
            found.append(cmdline[:120])
    return found


def _start_replicas(launch, count: int, overrides: list[str], env: dict[str, str]) -> list[tuple[int, Child]]:
    """``count`` `stj serve` replicas, each on a port it picks, started together; (port, the process) of each
    once its model is loaded."""
    command = stj_command(
        ["serve", "-c", "configs/demo.yaml", "--port", "0"], [*overrides, "serve.reload_interval_s=1"]
    )
    replicas = [launch(command, f"serve-{i}.log", env) for i in range(count)]
    started = []
    for replica in replicas:
        base = replica.output.wait_for(SERVING_ON, timeout=180).group(1)
        replica.output.wait_for(WORKER_READY, timeout=180)
        started.append((int(base.rsplit(":", 1)[1]), replica))
    return started


def _ready(port: int) -> dict | None:
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/ready", timeout=5)
    except requests.RequestException:  # not listening yet, or still loading
        return None
    return answer.json() if answer.ok else None


def _wait_for_version(port: int, version: str, replica: Child) -> None:
    """Until the replica serves ``version`` (it follows the alias by polling the registry: so does this)."""
    deadline = time.monotonic() + 180
    while (_ready(port) or {}).get("model", {}).get("version") != version:
        assert replica.proc.poll() is None, replica.output.text()[-3000:]
        assert time.monotonic() < deadline, replica.output.text()[-3000:]
        time.sleep(0.5)


@pytest.fixture
def team_dir() -> Path:
    # not under pytest's tmp_path: that is private to root, and PostgreSQL runs as its own user
    folder = Path(tempfile.mkdtemp(prefix="stj-team-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_team_up_deploy_through_the_worker_on_dask_serve_and_team_down(
    tmp_path: Path, team_dir: Path, overrides_for, stj, launch
) -> None:
    env = {
        **os.environ,
        "STJ_TEAM_DIR": str(team_dir),
        **{f"STJ_TEAM_{name}_PORT": str(free_port()) for name in ("PG", "PREFECT", "MLFLOW", "DASK")},
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # the worker picks the run up at once, not within its default 10 s
    }
    env.pop("PREFECT_API_URL", None)  # the suite's own server must not be the team's
    up = _make("team-up", env)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        assert "team: up" in up.stdout
        started = json.loads((team_dir / "state.json").read_text())
        assert {e["name"] for e in started} == {
            "prefect-server", "mlflow-server", "dask-scheduler", "dask-worker-1", "dask-worker-2", "prefect-worker"
        }  # fmt: skip
        team = {**env, **_read_env(team_dir / "env")}
        assert team["STJ_ORCHESTRATION__TASK_RUNNER"] == "dask"
        assert team["STJ_SERVE__DATABASE_URL"].startswith("postgresql://postgres@")  # no password in the file
        assert (team_dir / "pgpass").stat().st_mode & 0o077 == 0
        mlflow_url = team["STJ_TRACKING__URI"]

        # the config's paths stay the test's; tracking and orchestration come from the team's settings
        overrides = [
            o
            for o in overrides_for(tmp_path)
            if not o.startswith(("tracking.uri=", "tracking.artifact_dir=", "serve.database_url="))
        ]
        overrides += [f"scrape.base_url=http://127.0.0.1:{free_port()}", "orchestration.embed_shard_size=8"]
        deployed = stj(["deploy", "-c", "configs/demo.yaml", "--name", "stj-e2e", "--run"], overrides, env=team)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        assert "of 'stj-pipeline/stj-e2e' ended Completed" in deployed.stdout

        no_pool = stj(["deploy", "-c", "configs/demo.yaml", "--pool", "nope"], overrides, env=team)
        assert no_pool.returncode == 2 and "--pool 'nope'" in no_pool.stderr, no_pool.stderr[-2000:]

        worker_log = (team_dir / "logs" / "prefect-worker.log").read_text()
        assert f"shard tasks on {team['STJ_ORCHESTRATION__DASK_ADDRESS']}" in worker_log, worker_log[-3000:]
        scheduler_log = (team_dir / "logs" / "dask-scheduler.log").read_text()
        assert "Register worker" in scheduler_log

        client = MlflowClient(tracking_uri=mlflow_url)
        champion = client.get_model_version_by_alias("stj-classifier", "champion")
        assert client.get_run(champion.run_id).info.status == "FINISHED"
        # artifacts went through the server, into the team's artifact store
        assert any((team_dir / "mlartifacts").rglob("MLmodel"))

        replicas = []
        try:
            replicas = _start_replicas(launch, 2, overrides, team)
            photo = next((tmp_path / "data" / "raw").rglob("*.jpg"))
            for port, _ in replicas:
                answer = requests.post(
                    f"http://127.0.0.1:{port}/predict", files={"image": photo.read_bytes()}, timeout=60
                )
                assert answer.ok, answer.text
                assert answer.json()["model"] == {"name": "stj-classifier", "version": champion.version}

            # the replicas share one database: signed in on the first, known with the same history on the second
            first, second = (f"http://127.0.0.1:{port}" for port, _ in replicas)
            browser = requests.Session()  # cookies are per host, not per port: the browser of one user
            account = {"email": "ann@example.org", "password": "correct horse battery"}
            signup = browser.post(f"{first}/api/signup", json=account, headers={"Origin": first}, timeout=60)
            assert signup.status_code == 201, signup.text
            kept = browser.post(
                f"{first}/predict?history=1", files={"image": photo.read_bytes()}, headers={"Origin": first}, timeout=60
            )
            assert kept.ok and kept.json()["history_id"], kept.text
            assert browser.get(f"{second}/api/me", timeout=60).json()["user"]["email"] == account["email"]
            there = browser.get(f"{second}/api/history", timeout=60).json()
            assert there["total"] == 1 and there["rows"][0]["id"] == kept.json()["history_id"], there

            # the alias moves on the server: every replica follows it
            moved = client.create_model_version(
                "stj-classifier",
                champion.source,
                run_id=champion.run_id,
                model_id=champion.source.removeprefix("models:/"),
            )
            client.set_registered_model_alias("stj-classifier", "champion", moved.version)
            for port, replica in replicas:
                _wait_for_version(port, moved.version, replica)
        finally:
            for _, replica in replicas:
                os.killpg(replica.proc.pid, signal.SIGINT)
            for _, replica in replicas:
                replica.proc.wait(60)
    finally:
        down = _make("team-down", env)
    assert down.returncode == 0, down.stderr[-3000:]
    pids = [psutil.Process(e["pid"]) for e in started if psutil.pid_exists(e["pid"])]
    gone, alive = psutil.wait_procs(pids, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
    assert not _running_below(team_dir), _running_below(team_dir)
