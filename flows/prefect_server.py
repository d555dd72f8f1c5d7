"""The Prefect API a command's flows report to: ``PREFECT_API_URL`` (environment or profile) when set, else a
temporary server this command starts and stops.

Prefect would start that temporary server itself, but in the command's process group: Ctrl-C in a terminal
then reaches the server too, which dies first and leaves the run to fail with connection tracebacks. Ours
runs in a session of its own (the interrupt reaches only ``stj``, which stops it last), ends with its parent
(PDEATHSIG, and the command's watchdog), and serves the same app Prefect's does.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from configs.errors import UserError
from core.processes import die_with_parent, free_port, stop_process

log = logging.getLogger(__name__)

API_ENV = "PREFECT_API_URL"
UI_ENV = "PREFECT_UI_URL"
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind


def server_command(port: int) -> list[str]:
    """The command Prefect runs for its temporary server (the API only, no UI)."""
    prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(prefect_dir.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _wait_healthy(process: subprocess.Popen, api: str, timeout_s: float) -> bool:
    """True once ``api`` answers its health check; False if the process exits first (port taken)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if process.returncode == PORT_IN_USE:
                return False
            raise UserError(f"the temporary Prefect server exited ({process.returncode}); set {API_ENV} to use one")
        try:
            if requests.get(f"{api}/health", timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise UserError(f"the temporary Prefect server did not answer in {timeout_s:.0f} s; set {API_ENV} to use one")


def _drain_reports(timeout_s: float = 5.0) -> None:
    """Send the logs and events Prefect still holds, while the server is up (else they fail at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout_s, at_exit=False)
        except Exception as exc:  # a report lost is not worth failing the command for
            log.debug("could not drain %s: %s", worker.__name__, exc)


def configured_api() -> str | None:
    """The Prefect API URL from the environment or the active profile, if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


@contextmanager
def prefect_api(scheduler: bool = False) -> Iterator[str]:
    """Yield the Prefect API URL the flows in this block report to, starting a temporary server if none is
    configured (stopped when the block ends, however it ends).

    ``scheduler``: the temporary server also runs Prefect's services, the scheduler among them, which turns
    a deployment's cron into runs (an ephemeral server runs none, and a served deployment would wait forever).
    """
    if configured := configured_api():
        yield configured
        return
    from prefect.context import refresh_global_settings_context

    timeout_s = float(os.environ.get(STARTUP_TIMEOUT_ENV, "120"))
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_FINAL": "1"}
    if not scheduler:
        env["PREFECT__SERVER_EPHEMERAL"] = "1"
    log.info("starting a temporary Prefect server (set %s to report to your own)", API_ENV)
    started = time.monotonic()
    while True:
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        process = subprocess.Popen(
            server_command(port),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches stj, not the server
            preexec_fn=die_with_parent,
        )
        try:
            if _wait_healthy(process, api, timeout_s):
                break
        except BaseException:
            stop_process(process)
            raise
    log.info("Prefect server ready in %.1f s", time.monotonic() - started)
    saved = {name: os.environ.get(name) for name in (API_ENV, UI_ENV)}
    try:
        # no UI: an empty UI URL stops Prefect's "View at <link>" lines (here and in flow-run processes)
        os.environ.update({API_ENV: api, UI_ENV: ""})
        refresh_global_settings_context()
        try:
            yield api
        finally:
            _drain_reports()
    finally:  # also when a second interrupt cuts the drain short
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        refresh_global_settings_context()
        stop_process(process)
