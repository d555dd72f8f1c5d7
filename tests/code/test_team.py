"""The team services' bookkeeping: settings from the environment, and which recorded processes still run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from team.cluster import main
from team.processes import Services
from team.settings import Team, TeamError


def test_the_folder_and_ports_come_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STJ_TEAM_DIR", str(tmp_path))
    monkeypatch.setenv("STJ_TEAM_MLFLOW_PORT", "6001")
    team = Team.from_env()
    assert team.root == tmp_path and team.mlflow_port == 6001 and team.pg_port == 55432
    settings = team.settings()
    assert settings["STJ_TRACKING__URI"] == "http://127.0.0.1:6001"
    assert settings["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert settings["STJ_ORCHESTRATION__DASK_ADDRESS"] == "tcp://127.0.0.1:8786"


def test_a_bad_port_is_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("STJ_TEAM_PG_PORT", "5432x")
    with pytest.raises(TeamError, match="STJ_TEAM_PG_PORT='5432x'"):
        Team.from_env()
    assert main(["up"]) == 1
    assert capsys.readouterr().err.strip() == "team: STJ_TEAM_PG_PORT='5432x': not a port number"


def test_usage(capsys) -> None:
    assert main(["sideways"]) == 2
    assert "usage: python -m team up|down" in capsys.readouterr().err


def test_a_recorded_process_counts_only_while_the_same_one_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STJ_TEAM_DIR", str(tmp_path))
    services = Services(Team.from_env())
    services.logs.mkdir(parents=True)
    services.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    assert [e["name"] for e in Services(Team.from_env()).alive()] == ["sleeper"]  # read back from state.json
    services.started[0]["created"] -= 100  # the same pid, another start time: a reused pid is not ours
    assert services.alive() == []
    services.started[0]["created"] += 100
    assert Services(Team.from_env()).stop_all() == ["sleeper"]
    assert Services(Team.from_env()).alive() == []


def test_down_with_nothing_started_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STJ_TEAM_DIR", str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "team", "down"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "team: nothing was running", done.stderr
