"""The team's processes: started detached with a log each, remembered in ``state.json`` (pid and start time,
so a reused pid is never hit), waited for until they answer, stopped newest first with what they started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from configs.files import atomic_write_text
from team.settings import HOST, Team, TeamError


def run_checked(command: list[str], what: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` to its end; a failure is a :class:`TeamError` saying ``what`` failed and how."""
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise TeamError(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done


def wait_ready(
    ready: Callable[[], bool], what: str, log: Path, alive: Callable[[], bool], timeout_s: float = 120
) -> None:
    """Wait until ``ready()``; a :class:`TeamError` naming ``log`` when the process exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not alive():
            raise TeamError(f"{what} exited while starting; see {log}")
        if time.monotonic() > deadline:
            raise TeamError(f"{what} did not start in {timeout_s:.0f} s; see {log}")
        time.sleep(0.5)


def port_taken(port: int) -> bool:
    """Whether something already listens on ``port`` of :data:`HOST`."""
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


def answers_ok(url: str) -> Callable[[], bool]:
    """A check that ``url`` answers 200."""

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
        return [entry for entry in self.started if recorded_process(entry) is not None]

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
            process = recorded_process(entry)
            if process is None:
                continue
            tree = [process, *process.children(recursive=True)]
            for member in tree:
                send_signal(member, signal.SIGTERM)
            _, alive = psutil.wait_procs(tree, timeout=grace_s)
            for member in alive:
                send_signal(member, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)
            stopped.append(entry["name"])
        self.started = []
        self._save()
        return stopped


def recorded_process(entry: dict) -> psutil.Process | None:
    """The process a ``state.json`` entry names, if it still runs (same pid and start time, not a zombie)."""
    try:
        process = psutil.Process(entry["pid"])
        if abs(process.create_time() - entry["created"]) > 0.01 or process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def send_signal(process: psutil.Process, signum: int) -> None:
    """Send ``signum``; a process already gone is fine."""
    try:
        process.send_signal(signum)
    except psutil.Error:
        pass
