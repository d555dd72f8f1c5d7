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
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from configs.files import atomic_write_text

HOST = "127.0.0.1"
POOL = "stj"


@dataclass(frozen=True)
class Team:
    """Where the services live and listen (ports from ``STJ_TEAM_*_PORT`` when set)."""

    root: Path
    pg_port: int
    prefect_port: int
    mlflow_port: int
    dask_port: int

    @classmethod
    def from_env(cls) -> Team:
        """The folder (``STJ_TEAM_DIR``, default ``.team``) and ports (``STJ_TEAM_<NAME>_PORT``) from the
        environment, defaults otherwise."""

        def port(name: str, default: int) -> int:
            value = os.environ.get(f"STJ_TEAM_{name}_PORT", str(default))
            if not value.isdigit():
                raise TeamError(f"STJ_TEAM_{name}_PORT={value!r}: not a port number")
            return int(value)

        root = Path(os.environ.get("STJ_TEAM_DIR", ".team")).resolve()
        return cls(root, port("PG", 55432), port("PREFECT", 4200), port("MLFLOW", 5050), port("DASK", 8786))

    @property
    def prefect_api(self) -> str:
        """The Prefect server's API URL."""
        return f"http://{HOST}:{self.prefect_port}/api"

    @property
    def mlflow_uri(self) -> str:
        """The MLflow tracking server's URL."""
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def dask_address(self) -> str:
        """The Dask scheduler's address."""
        return f"tcp://{HOST}:{self.dask_port}"

    def database(self, name: str, driver: str = "") -> str:
        """A SQLAlchemy URL of one of the cluster's databases (the password comes from ``PGPASSWORD``)."""
        return f"postgresql{driver}://postgres@{HOST}:{self.pg_port}/{name}"

    @property
    def ports(self) -> dict[str, int]:
        """Each service's port."""
        return {
            "PostgreSQL": self.pg_port,
            "Prefect": self.prefect_port,
            "MLflow": self.mlflow_port,
            "Dask": self.dask_port,
        }

    def settings(self) -> dict[str, str]:
        """The environment that points ``stj`` (config overrides) and ``prefect`` at the services."""
        return {
            "PREFECT_API_URL": self.prefect_api,
            "STJ_TRACKING__URI": self.mlflow_uri,
            "STJ_TRACKING__UI_URL": self.mlflow_uri,
            "STJ_ORCHESTRATION__TASK_RUNNER": "dask",
            "STJ_ORCHESTRATION__DASK_ADDRESS": self.dask_address,
            "STJ_SERVE__DATABASE_URL": self.database("stj"),
            "PGPASSFILE": str(self.root / "pgpass"),  # libpq reads the password there: none in the env file
        }


class TeamError(Exception):
    """A service did not start; the message says which and where its log is."""


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise TeamError("PostgreSQL's server programs are missing: run `make system-deps` (Debian's postgresql)")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise TeamError(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done


def _wait(ready: Callable[[], bool], what: str, log: Path, alive: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not alive():
            raise TeamError(f"{what} exited while starting; see {log}")
        if time.monotonic() > deadline:
            raise TeamError(f"{what} did not start in {timeout_s:.0f} s; see {log}")
        time.sleep(0.5)


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    return check


class Services:
    """Starts and stops the team's processes, remembering them in ``state.json``."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.logs = team.root / "logs"
        self.state_file = team.root / "state.json"
        self.started: list[dict] = json.loads(self.state_file.read_text()) if self.state_file.exists() else []

    def _save(self) -> None:
        atomic_write_text(self.state_file, json.dumps(self.started, indent=2))

    def alive(self) -> list[dict]:
        """The recorded processes still running (same pid and start time)."""
        return [entry for entry in self.started if _process(entry) is not None]

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> tuple[Path, Callable]:
        """Start ``command`` detached (own session, output to a fresh log); its log and a "still running?"."""
        log = self.logs / f"{name}.log"
        environ = {k: v for k, v in os.environ.items() if k != "STJ_OWNER"}  # not any command's child
        with log.open("wb") as output:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**environ, **(env or {})},
                cwd=Path.cwd(),
            )
        entry = {"name": name, "pid": proc.pid, "created": psutil.Process(proc.pid).create_time()}
        self.started.append(entry)
        self._save()
        return log, lambda: proc.poll() is None

    def stop_all(self, grace_s: float = 20) -> list[str]:
        """Stop every recorded process and what it started (newest first); the names stopped."""
        stopped = []
        for entry in reversed(self.started):
            process = _process(entry)
            if process is None:
                continue
            tree = [process, *process.children(recursive=True)]
            for member in tree:
                _signal(member, signal.SIGTERM)
            _, alive = psutil.wait_procs(tree, timeout=grace_s)
            for member in alive:
                _signal(member, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)
            stopped.append(entry["name"])
        self.started = []
        self._save()
        return stopped


def _process(entry: dict) -> psutil.Process | None:
    try:
        process = psutil.Process(entry["pid"])
        if abs(process.create_time() - entry["created"]) > 0.01 or process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def _signal(process: psutil.Process, signum: int) -> None:
    try:
        process.send_signal(signum)
    except psutil.Error:
        pass


def _pg_data(team: Team) -> Path:
    return team.root / "pg"


def _write_private(file: Path, content: str) -> None:
    """Write ``content`` to ``file``, readable by its owner only from the first byte (replacing it whole)."""
    partial = file.with_name(file.name + ".partial")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(content)
    partial.replace(file)


def _pg_password(team: Team) -> str:
    """The cluster's password, made on first use (``.team/pg-password``, readable by its owner only)."""
    file = team.root / "pg-password"
    if not file.exists():
        team.root.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(24))
    return file.read_text().strip()


def start_postgres(team: Team) -> dict[str, str]:
    """initdb on first use (password authentication), then start the cluster (loopback only, its socket in
    its folder) and create the databases; the environment that lets a client in."""
    data, password = _pg_data(team), _pg_password(team)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = team.root / "pg-password"
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")  # initdb reads it as postgres; root reads anything
            _run(_as_postgres(["test", "-w", str(data)]), f"PostgreSQL as user postgres: reaching {data}")
        initdb = [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256", f"--pwfile={pwfile}"]
        _run(_as_postgres(initdb), "initdb")
    options = f"-p {team.pg_port} -k {data} -c listen_addresses={HOST}"
    _run(
        _as_postgres(
            [_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "server.log"), "-w", "start"]
        ),
        f"PostgreSQL (log: {data / 'server.log'})",
    )
    client = {"PGPASSWORD": password}
    _write_private(team.root / "pgpass", f"{HOST}:*:*:postgres:{password}\n")
    where = ["-h", HOST, "-p", str(team.pg_port), "-U", "postgres"]
    for name in ("prefect", "mlflow", "stj"):
        exists = _run(
            [_pg_bin("psql"), *where, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], "psql", client
        )
        if exists.stdout.strip() != "1":
            _run([_pg_bin("createdb"), *where, name], f"createdb {name}", client)
    return client


def stop_postgres(team: Team) -> str | None:
    """Stop the cluster if it runs: ``None`` when it did not run, else what happened."""
    data = _pg_data(team)
    if not (data / "postmaster.pid").exists():
        return None
    done = subprocess.run(
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True, text=True
    )
    return "postgresql" if done.returncode == 0 else f"postgresql NOT stopped ({done.stderr.strip()[-200:]})"


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
    taken = [f"{name} :{port}" for name, port in team.ports.items() if _port_taken(port)]
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
    _wait(_answers(f"{team.prefect_api}/health"), "the Prefect server", prefect_log, prefect_alive, 240)
    _wait(_answers(f"{team.mlflow_uri}/health"), "the MLflow server", mlflow_log, mlflow_alive, 180)
    _wait(lambda: "Scheduler at:" in dask_log.read_text(), "the Dask scheduler", dask_log, dask_alive)
    for index in (1, 2):
        services.start(
            f"dask-worker-{index}",
            [_bin("dask"), "worker", team.dask_address, "--nthreads", "1", "--name", f"stj-{index}",
             "--dashboard-address", ":0"],
            {"PREFECT_API_URL": team.prefect_api},
        )  # fmt: skip
    pool = ["work-pool", "create", POOL, "--type", "process", "--overwrite"]
    _run([_bin("prefect"), *pool], "creating the work pool", api)
    worker_log, worker_alive = services.start(
        "prefect-worker", [_bin("prefect"), "worker", "start", "--pool", POOL, "--type", "process"], api
    )
    _wait(lambda: _dask_workers(dask_log) >= 2, "two Dask workers", dask_log, dask_alive)
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
