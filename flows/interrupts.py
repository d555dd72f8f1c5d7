"""What an interrupted command tells its user: which stage was running, and what happens next.

The pipeline marks the stage it enters (:func:`entering`); Ctrl-C or SIGTERM then ends the command with one
line from :func:`interrupted_message` instead of a traceback.
"""

from __future__ import annotations

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
