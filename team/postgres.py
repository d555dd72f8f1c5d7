"""The team's PostgreSQL: Debian's server binaries, ``initdb`` into ``.team/pg`` on first use (password
authentication, the generated password readable by its owner only), started loopback-only, with the
databases ``prefect``, ``mlflow`` and ``stj``."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from team.processes import run_checked
from team.settings import HOST, Team, TeamError


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise TeamError("PostgreSQL's server programs are missing: run `make system-deps` (Debian's postgresql)")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


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
            run_checked(_as_postgres(["test", "-w", str(data)]), f"PostgreSQL as user postgres: reaching {data}")
        initdb = [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256", f"--pwfile={pwfile}"]
        run_checked(_as_postgres(initdb), "initdb")
    options = f"-p {team.pg_port} -k {data} -c listen_addresses={HOST}"
    run_checked(
        _as_postgres(
            [_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "server.log"), "-w", "start"]
        ),
        f"PostgreSQL (log: {data / 'server.log'})",
    )
    client = {"PGPASSWORD": password}
    _write_private(team.root / "pgpass", f"{HOST}:*:*:postgres:{password}\n")
    where = ["-h", HOST, "-p", str(team.pg_port), "-U", "postgres"]
    for name in ("prefect", "mlflow", "stj"):
        exists = run_checked(
            [_pg_bin("psql"), *where, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], "psql", client
        )
        if exists.stdout.strip() != "1":
            run_checked([_pg_bin("createdb"), *where, name], f"createdb {name}", client)
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
