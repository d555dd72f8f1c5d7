"""STJ's own loggers: one level for all of them, in the `stj` command and in a scheduled run's process."""

from __future__ import annotations

import logging
import os

from flows.interrupts import redeliver_swallowed_interrupts

STJ_LOGGERS = ("scraper", "training", "serving", "core", "catalog", "flows")
# TensorFlow's notice when one function object traced 5 times within its last 10 calls. STJ builds a new
# runtime (one tf.function) per fold model and per checkpoint, each traced once on its first batch; when an
# earlier one is freed, its successor may get the same id, and TensorFlow counts their first traces together.
RETRACING_NOTICE = "triggered tf.function retracing"


class _DropRetracingNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return RETRACING_NOTICE not in record.getMessage()


def drop_retracing_notices() -> None:
    """Keep TensorFlow's retracing notice out of STJ's output (see :data:`RETRACING_NOTICE`); once per process."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _DropRetracingNotice) for f in logger.filters):
        logger.addFilter(_DropRetracingNotice())


def set_stj_level(level: int | str) -> None:
    """Every STJ logger (and so every module under it) at ``level``."""
    for name in STJ_LOGGERS:
        logging.getLogger(name).setLevel(level)


def adopt_command_settings(environ: dict[str, str] | None = None) -> None:
    """For a process Prefect started to run a deployment (not through ``stj``): STJ's loggers at the level the
    ``stj schedule`` command chose (``PREFECT_LOGGING_LEVEL``, inherited), and interrupts a finalizer swallowed
    sent again. Prefect keeps its own SIGTERM handling there (a cancelled run ends Cancelled)."""
    set_stj_level((os.environ if environ is None else environ).get("PREFECT_LOGGING_LEVEL", "INFO"))
    drop_retracing_notices()
    redeliver_swallowed_interrupts()
