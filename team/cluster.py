"""The team services on one machine, for trying the team setup: ``make team-up`` / ``make team-down``.

What starts, in this order, each in a session of its own (so a Ctrl-C in the terminal that ran ``team-up``
does not reach them), with its log under ``.team/logs``:

- PostgreSQL (Debian's binaries; ``initdb`` into ``.team/pg``, no system service; as the ``postgres`` user
  when run as root, which PostgreSQL requires), with two databases: ``prefect`` and ``mlflow``; password
  authentication, the generated password in ``.team/pg-password`` (mode 600), handed to the servers in
  their environment (``PGPASSWORD``), never on a command line; a third database, ``stj``, holds the ``stj
  serve`` replicas' shared state (``serve.database_url``: accounts, sessions, tokens, history), which they
  reach through the password file ``.team/pgpass`` (mode 600, named by ``PGPASSFILE`` in ``.team/env``);
- a Prefect server on it, and a ``process`` work pool ``stj`` with one worker;
- an MLflow tracking server on it, serving artifacts from ``.team/mlartifacts`` (clients need no shared disk);
- a Dask scheduler and two single-threaded workers.

``.team/state.json`` records each process (pid and start time, so a reused pid is never hit);
``team-down`` stops them all, newest first, and PostgreSQL last. ``.team/env`` holds the settings that point
``stj`` and ``prefect`` at the services (``source .team/env``).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from configs.files import atomic_write_text
from team.postgres import start_postgres, stop_postgres
from team.processes import Services, answers_ok, port_taken, run_checked, wait_ready
from team.settings import HOST, POOL, Team, TeamError


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def up(team: Team) -> None:
    """Start everything; on any failure (or Ctrl-C), stop what was started."""
    services = Services(team)
    if running := services.alive():
        names = {e["name"] for e in running}
        dead = [e["name"] for e in services.started if e["name"] not in names]
        if dead:
            raise TeamError(f"partly up ({', '.join(dead)} not running): `make team-down`, then `make team-up`")
        print(f"team: already up ({', '.join(sorted(names))}); `make team-down` stops it")
        return
    taken = [f"{name} :{port}" for name, port in team.ports.items() if port_taken(port)]
    if taken:
        raise TeamError(f"ports in use: {', '.join(taken)} (choose others with STJ_TEAM_<NAME>_PORT)")
    services.logs.mkdir(parents=True, exist_ok=True)
    try:
        _start_all(team, services)
    except BaseException:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C must not cut the clean-up short
            down(team, quiet=True)
        raise
    env_file = team.root / "env"
    atomic_write_text(env_file, "".join(f"export {k}={v}\n" for k, v in team.settings().items()))
    shown = env_file.relative_to(Path.cwd()) if env_file.is_relative_to(Path.cwd()) else env_file
    print(
        f"team: up - PostgreSQL :{team.pg_port}, Prefect {team.prefect_api.removesuffix('/api')} (pool '{POOL}', "
        f"1 worker), MLflow {team.mlflow_uri}, Dask {team.dask_address} (2 workers)\n"
        f"team: `source {shown}` points stj and prefect at them; `make team-down` stops them"
    )


def _start_all(team: Team, services: Services) -> None:
    database = start_postgres(team)
    api = {"PREFECT_HOME": str(team.root / "prefect"), "PREFECT_API_URL": team.prefect_api}
    prefect_log, prefect_alive = services.start(
        "prefect-server",
        [_bin("prefect"), "server", "start", "--host", HOST, "--port", str(team.prefect_port)],
        {
            **api,
            **database,
            "PREFECT_API_DATABASE_CONNECTION_URL": team.database("prefect", "+asyncpg"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        },
    )
    mlflow_log, mlflow_alive = services.start(
        "mlflow-server",
        [
            _bin("mlflow"), "server", "--host", HOST, "--port", str(team.mlflow_port),
            "--artifacts-destination", str(team.root / "mlartifacts"), "--serve-artifacts", "--workers", "2",
        ],
        {**database, "MLFLOW_BACKEND_STORE_URI": team.database("mlflow")},
    )  # fmt: skip
    dask_log, dask_alive = services.start(
        "dask-scheduler",
        [_bin("dask"), "scheduler", "--host", HOST, "--port", str(team.dask_port), "--dashboard-address", ":0"],
    )
    wait_ready(answers_ok(f"{team.prefect_api}/health"), "the Prefect server", prefect_log, prefect_alive, 240)
    wait_ready(answers_ok(f"{team.mlflow_uri}/health"), "the MLflow server", mlflow_log, mlflow_alive, 180)
    wait_ready(lambda: "Scheduler at:" in dask_log.read_text(), "the Dask scheduler", dask_log, dask_alive)
    for index in (1, 2):
        services.start(
            f"dask-worker-{index}",
            [_bin("dask"), "worker", team.dask_address, "--nthreads", "1", "--name", f"stj-{index}",
             "--dashboard-address", ":0"],
            {"PREFECT_API_URL": team.prefect_api},
        )  # fmt: skip
    pool = ["work-pool", "create", POOL, "--type", "process", "--overwrite"]
    run_checked([_bin("prefect"), *pool], "creating the work pool", api)
    worker_log, worker_alive = services.start(
        "prefect-worker", [_bin("prefect"), "worker", "start", "--pool", POOL, "--type", "process"], api
    )
    wait_ready(lambda: _dask_workers(dask_log) >= 2, "two Dask workers", dask_log, dask_alive)
    if not worker_alive():
        raise TeamError(f"the Prefect worker exited while starting; see {worker_log}")


def _dask_workers(scheduler_log: Path) -> int:
    text = scheduler_log.read_text()
    return text.count("Register worker") - text.count("Remove worker")


def down(team: Team, quiet: bool = False) -> None:
    """Stop every service team-up started, PostgreSQL last."""
    stopped = Services(team).stop_all()
    if (postgres := stop_postgres(team)) is not None:
        stopped.append(postgres)
    if not quiet:
        print(f"team: stopped {', '.join(stopped)}" if stopped else "team: nothing was running")


def main(argv: list[str] | None = None) -> int:
    """``python -m team up|down``."""
    args = argv if argv is not None else sys.argv[1:]
    if args not in (["up"], ["down"]):
        print("usage: python -m team up|down", file=sys.stderr)
        return 2
    try:
        team = Team.from_env()
        (up if args[0] == "up" else down)(team)
    except TeamError as exc:
        print(f"team: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("team: interrupted; what had started is stopped", file=sys.stderr)
        return 130
    return 0
