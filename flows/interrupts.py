"""What an interrupted command tells its user: which stage was running, and what happens next.

The pipeline marks the stage it enters (:func:`entering`); Ctrl-C or SIGTERM then ends the command with one
line from :func:`interrupted_message` instead of a traceback. :func:`install_handlers` makes SIGTERM stop a
command the way Ctrl-C does, and makes sure neither is lost.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

_running: list[str] = []  # the stage being run, innermost last (a process runs one command)

RESUMES = {
    "scrape": "photos saved so far stay in the manifest; the next run scrapes only what is missing",
    "validate": "the next run checks the data again",
    "prepare": "the split is written whole or not at all; the next run makes it again",
    "train": "no model was published, an open MLflow run is marked KILLED; the next run trains again",
    "publish": "the gate decides again on the next run",
    "serve": "the server and its workers are stopped",
    "catalog": "the catalog is stopped",
    "schedule": "the deployment is no longer served",
}


def _terminate_like_interrupt(signum: int, frame: object) -> None:
    # SIGTERM's default ends the process without running exit handlers, orphaning children such as
    # Prefect's temporary server; as an interrupt, every ``finally`` and atexit handler runs.
    raise KeyboardInterrupt


def _swallowed_signal(exc: BaseException | None) -> int | None:
    """The signal behind an interrupt exception (KeyboardInterrupt, Prefect's TerminationSignal), if it is one."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if type(exc).__name__ == "TerminationSignal" and isinstance(getattr(exc, "signal", None), int):
        return exc.signal
    return None


def redeliver_swallowed_interrupts() -> None:
    """An interrupt (Ctrl-C, or Prefect's SIGTERM exception) swallowed by a finalizer is sent again; any other
    unraisable exception goes to the hook installed before."""
    previous = sys.unraisablehook

    def hook(unraisable: object) -> None:
        # A signal's exception raised while a finalizer (``__del__``, e.g. GitPython's Repo during a garbage
        # collection) runs is printed and dropped by Python, and the command would go on as if never told to
        # stop. Send the signal again, from another thread so that it lands in ordinary code.
        signum = _swallowed_signal(getattr(unraisable, "exc_value", None))
        if signum is None:
            previous(unraisable)
            return
        resend = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        resend.daemon = True
        resend.start()

    sys.unraisablehook = hook


def install_handlers() -> None:
    """SIGTERM stops the command like Ctrl-C; an interrupt swallowed by a finalizer is sent again."""
    signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    redeliver_swallowed_interrupts()


def entering(stage: str) -> None:
    """Record that ``stage`` is now running (until :func:`leaving`)."""
    _running.append(stage)


def leaving(stage: str) -> None:
    """Record that ``stage`` ended."""
    if stage in _running:
        _running.remove(stage)


def current_stage(default: str) -> str:
    """The stage running now, or ``default`` (the command) when none is marked."""
    return _running[-1] if _running else default


def interrupted_message(command: str) -> str:
    """One line: what was interrupted, and what the next run does about it."""
    stage = current_stage(command)
    where = f"stj {command}" if stage == command else f"stj {command} during {stage}"
    outcome = RESUMES.get(stage, "the next run starts from what was saved")
    return f"stj: interrupted {where}; {outcome}."
