"""What `stj monitor` reads and writes in the server's database, on SQLite and on a real PostgreSQL (the team
setup's): the champion's rows of a time window, streamed (other models, versions and times left out), and the
latest report that `/about` and `/metrics` show."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from configs.schema import MonitorConfig
from core.traffic_baseline import TrafficBaseline
from serving.database import Database
from serving.metrics import ServerMetrics
from serving.monitor import Window, judge, latest_report, record_report
from serving.prediction_log import PredictionLog, stream_log
from serving.predictor import Assessed, ModelRef

CLASSES = ["saree", "trousers", "jeans"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Database:
    if request.param == "postgresql":
        return Database(request.getfixturevalue("new_postgres_database")())
    return Database(f"sqlite:///{tmp_path / 'serve.db'}")


def _log_rows(database: Database, model: ModelRef, rows: int) -> None:
    log = PredictionLog(database, MonitorConfig(), ServerMetrics(), background=False)
    rng = np.random.default_rng(len(model.name) + int(model.version))
    probs = rng.dirichlet(np.ones(3), rows).astype(np.float32)
    assessed = Assessed(probs, rng.random(rows).astype(np.float32), 0.5, rng.normal(size=(rows, 8)).astype(np.float32))
    for row in range(rows):
        label = int(np.argmax(probs[row]))
        top = [{"label": CLASSES[label], "probability": float(probs[row, label])}]
        log.record(model, assessed, row, top, f"req{row}", row)
    log.flush()


def test_the_window_holds_only_the_champions_rows_streamed(database) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    _log_rows(database, ModelRef("stj-classifier", "3", "m"), 40)
    _log_rows(database, ModelRef("stj-classifier", "2", "m"), 5)  # the version before: not the champion's
    _log_rows(database, ModelRef("imagenet-classifier", "3", "m"), 5)
    after = datetime.now(UTC) + timedelta(seconds=1)
    rows = list(stream_log(database, before, after, model=("stj-classifier", "3")))
    assert len(rows) == 40 and {row["model_version"] for row in rows} == {"3"}
    assert rows[0]["embedding"].shape == (8,) and isinstance(rows[0]["in_distribution"], bool)
    assert list(stream_log(database, after, after + timedelta(hours=1), model=("stj-classifier", "3"))) == []
    assert len(list(stream_log(database, before, after))) == 50


def test_the_latest_report_is_what_every_replica_reads(database) -> None:
    assert latest_report(database) is None
    rng = np.random.default_rng(0)
    baseline = TrafficBaseline(
        CLASSES, rng.integers(0, 3, 60), rng.random(60), rng.random(60) * 0.4, 0.39, rng.normal(size=(30, 8))
    )
    index, window, draw = {name: i for i, name in enumerate(CLASSES)}, Window(), random.Random(0)
    _log_rows(database, ModelRef("stj-classifier", "3", "m"), 40)
    for row in stream_log(database, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(seconds=1)):
        window.add(row, index, 100, draw)
    assert len(window.labels) == 40
    about = ("stj-classifier", "3", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    first = judge(window, baseline, MonitorConfig(), 1, about)
    record_report(database, first, "reports/first.html")
    second = judge(Window(), baseline, MonitorConfig(), 1, about)  # no predictions: not judged
    record_report(database, second, None)
    latest = latest_report(database)
    assert latest["drifted"] is None and latest["headline"] == second.headline and latest["report_path"] is None
    assert latest["model"] == {"name": "stj-classifier", "version": "3"} and latest["created_at"]
    metrics = ServerMetrics()
    metrics.monitor_report(latest)
    assert "stj_drift_detected -1.0" in metrics.exposition().decode()
