"""STJ's own loggers: one level for all of them, in the `stj` command and in a scheduled run's process."""

from __future__ import annotations

import logging
import os

from flows.interrupts import redeliver_swallowed_interrupts

STJ_LOGGERS = ("scraper", "training", "serving", "core", "catalog", "flows")


def set_stj_level(level: int | str) -> None:
    """Every STJ logger (and so every module under it) at ``level``."""
    for name in STJ_LOGGERS:
        logging.getLogger(name).setLevel(level)


def adopt_command_settings(environ: dict[str, str] | None = None) -> None:
    """For a process Prefect started to run a deployment (not through ``stj``): STJ's loggers at the level the
    ``stj schedule`` command chose (``PREFECT_LOGGING_LEVEL``, inherited), and interrupts a finalizer swallowed
    sent again. Prefect keeps its own SIGTERM handling there (a cancelled run ends Cancelled)."""
    set_stj_level((os.environ if environ is None else environ).get("PREFECT_LOGGING_LEVEL", "INFO"))
    redeliver_swallowed_interrupts()
