"""The prediction log: what the server answered, for watching live traffic (drift, "none of these" rate).

Each prediction (or the share ``monitor.log_sample``) becomes one row: time, request id and the photo's place
in the request, model name and version, label, confidence, top-k, the "none of these" score and verdict, and
the pooled features (float16) when the model has an index; never the photo. Rows go to the server's database
(``serve.database_url``): SQLite for one replica, the team's PostgreSQL for many, so every replica's traffic
lands in one table that ``stj monitor`` reads by time window (indexed). Partitioned Parquet would need a file
per writer and a compaction job to serve the same reads; the database already takes concurrent writers.

Writing never slows a request: :meth:`PredictionLog.record` puts the row on a bounded queue
(``monitor.log_queue``) with ``put_nowait``; when it is full the row is dropped and counted
(``stj_prediction_log_dropped_total``). One thread per worker writes what is queued in one transaction
every ``FLUSH_S`` (or sooner when ``FLUSH_ROWS`` wait), and once an hour deletes rows older than
``monitor.retention_days``. A worker killed loses at most the rows of its last second; the rows of a write
that fails (the database away) are dropped and counted too.

Size: ~2.8 KB a row for a Lite0 model (1 280 float16 features, ~0.3 KB of the rest), ~0.3 KB without
features (the ImageNet model); 100 000 predictions a day kept 30 days: ~8.4 GB. Cost: O(1) per request,
O(rows) per flush, O(rows deleted) per retention pass (through the ``created_at`` index).

Config keys: ``monitor.log_predictions``, ``monitor.log_sample``, ``monitor.log_queue``,
``monitor.retention_days``, ``serve.database_url``.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import text

from configs.schema import MonitorConfig
from serving.database import Database
from serving.metrics import ServerMetrics
from serving.predictor import Assessed, ModelRef

log = logging.getLogger(__name__)

FLUSH_S = 1.0
FLUSH_ROWS = 256
RETENTION_EVERY_S = 3600.0
STREAM_ROWS = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS prediction_log (
    id {id},
    created_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence {real} NOT NULL,
    top_k TEXT NOT NULL,
    ood_score {real},
    in_distribution INTEGER,
    embedding {blob}
);
CREATE INDEX IF NOT EXISTS prediction_log_created ON prediction_log (created_at);
CREATE INDEX IF NOT EXISTS prediction_log_request ON prediction_log (request_id)
"""
_COLUMNS = (
    "created_at",
    "request_id",
    "position",
    "model_name",
    "model_version",
    "label",
    "confidence",
    "top_k",
    "ood_score",
    "in_distribution",
    "embedding",
)


def _stamp(moment: datetime) -> str:
    """A UTC time as stored: ISO 8601 to the millisecond, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class PredictionLog:
    """One worker's writer of the prediction log (a daemon thread); :meth:`record` on the request path."""

    def __init__(
        self, database: Database, config: MonitorConfig, metrics: ServerMetrics, background: bool = True
    ) -> None:
        """``background``: start the writing thread (the server); without it the caller flushes."""
        self.database, self.config, self.metrics = database, config, metrics
        database.schema(_SCHEMA)
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=config.log_queue)
        self._write_lock = (
            threading.Lock()
        )  # a flush() or forget_old() called from outside and the thread never interleave
        self._next_retention = 0.0
        if background:
            threading.Thread(target=self._run, name="stj-prediction-log", daemon=True).start()

    def record(
        self, model: ModelRef, assessed: Assessed, row: int, top_k: list[dict], request_id: str, position: int = 0
    ) -> None:
        """Queue one prediction (``row`` of ``assessed``, answered with ``top_k``); never blocks: a full queue
        drops it, counted."""
        if random.random() >= self.config.log_sample:
            return
        verdict = assessed.verdict(row)
        features = assessed.features[row] if assessed.features is not None else None
        entry = {
            "created_at": _stamp(datetime.now(UTC)),
            "request_id": request_id,
            "position": position,
            "model_name": model.name,
            "model_version": str(model.version),
            "label": top_k[0]["label"],
            "confidence": float(top_k[0]["probability"]),
            "top_k": top_k,
            "ood_score": verdict.get("ood_score"),
            "in_distribution": None if not verdict else int(verdict["in_distribution"]),
            "embedding": features,
        }
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.metrics.log_dropped.inc()

    @property
    def queued(self) -> int:
        """Rows waiting to be written."""
        return self._queue.qsize()

    def flush(self) -> int:
        """Write every queued row now, in one transaction; how many."""
        rows = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not rows:
            return 0
        for entry in rows:  # serialised here, off the request path
            entry["top_k"] = json.dumps(entry["top_k"])
            if entry["embedding"] is not None:
                entry["embedding"] = np.asarray(entry["embedding"], np.float16).tobytes()
        statement = text(
            f"INSERT INTO prediction_log ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})"
        )
        try:
            with self._write_lock, self.database.write() as db:
                db.execute(statement, rows)
        except Exception:
            self.metrics.log_dropped.inc(len(rows))
            raise
        self.metrics.log_written.inc(len(rows))
        return len(rows)

    def forget_old(self, now: datetime | None = None) -> int:
        """Delete rows older than ``monitor.retention_days``; how many."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.config.retention_days)
        with self._write_lock, self.database.write() as db:
            result = db.execute(
                text("DELETE FROM prediction_log WHERE created_at < :cutoff"), {"cutoff": _stamp(cutoff)}
            )
        return int(result.rowcount or 0)

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with its worker
            time.sleep(FLUSH_S if self._queue.qsize() < FLUSH_ROWS else 0)
            try:
                self.flush()
                if time.monotonic() >= self._next_retention:
                    self.forget_old()
                    self._next_retention = time.monotonic() + RETENTION_EVERY_S
            except Exception:  # noqa: BLE001 - the database away must not stop the server (rows counted dropped)
                log.exception("prediction log: writing failed")


def read_log(database: Database, since: datetime, until: datetime) -> list[dict]:
    """The log's rows from ``since`` up to ``until`` (UTC), oldest first (:func:`stream_log`, all in a list)."""
    return list(stream_log(database, since, until))


def stream_log(
    database: Database, since: datetime, until: datetime, model: tuple[str, str] | None = None
) -> Iterator[dict]:
    """The log's rows from ``since`` up to ``until`` (UTC), oldest first, embeddings as float16 arrays; only
    ``model``'s (name, version) when given. Streamed ``STREAM_ROWS`` at a time (a server-side cursor on
    PostgreSQL): memory O(1) in the window's size, time O(rows in the window) through the ``created_at`` index."""
    where = "created_at >= :since AND created_at < :until"
    values = {"since": _stamp(since), "until": _stamp(until)}
    if model is not None:
        where += " AND model_name = :name AND model_version = :version"
        values.update(name=model[0], version=str(model[1]))
    query = text(f"SELECT {', '.join(_COLUMNS)} FROM prediction_log WHERE {where} ORDER BY created_at, id")
    with database.read() as db:
        for row in db.execution_options(yield_per=STREAM_ROWS).execute(query, values).mappings():
            entry = dict(row)
            entry["top_k"] = json.loads(entry["top_k"])
            if entry["embedding"] is not None:
                entry["embedding"] = np.frombuffer(entry["embedding"], np.float16)
            if entry["in_distribution"] is not None:
                entry["in_distribution"] = bool(entry["in_distribution"])
            yield entry
