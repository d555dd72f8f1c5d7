"""The prediction log: every answered prediction becomes a row (request id, model, answer, "none of these"
verdict, features) written off the request path; a full queue drops and counts; old rows are deleted; the
share logged follows the setting. A small real model (ResNet50 at 32 px) with an index, the app's own
SQLite database."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from core.ood import OodIndex
from serving.prediction_log import PredictionLog, read_log
from serving.predictor import Assessed, ModelRef


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def indexed(make_predictor):
    """A predictor whose index flags every photo (its one reference is far from anything, threshold below 0)."""
    return make_predictor(ood=OodIndex(np.full((1, 2048), 2048**-0.5, np.float16), k=1, threshold=-1.0))


def _window(state) -> list[dict]:
    now = datetime.now(UTC)
    return read_log(state.log.database, now - timedelta(minutes=5), now + timedelta(minutes=5))


def test_each_answered_prediction_is_a_row_with_its_request_id_verdict_and_features(indexed, app_for, tmp_path):
    app = app_for(tmp_path, indexed, "serve.min_side=16")
    http, state = app.test_client(), app.extensions["stj"]
    one = http.post("/predict", data={"image": (io.BytesIO(_jpeg((200, 30, 30))), "a.jpg")})
    files = [(io.BytesIO(_jpeg((20, 200, 30))), "b.jpg"), (io.BytesIO(_jpeg((20, 30, 200))), "c.jpg")]
    batch = http.post("/predict/batch", data={"images": files}, headers={"X-Request-Id": "client-42"})
    odd = http.post(
        "/predict", data={"image": (io.BytesIO(_jpeg((9, 9, 9))), "d.jpg")}, headers={"X-Request-Id": "a b"}
    )
    assert batch.headers["X-Request-Id"] == "client-42"  # the client's id, kept
    assert odd.headers["X-Request-Id"] not in ("a b", one.headers["X-Request-Id"])  # not a plain token: a new one
    state.log.flush()
    rows = _window(state)
    assert [(r["request_id"], r["position"]) for r in rows] == [
        (one.headers["X-Request-Id"], 0), ("client-42", 0), ("client-42", 1), (odd.headers["X-Request-Id"], 0)
    ]  # fmt: skip
    answers = [one.get_json(), *batch.get_json()["predictions"], odd.get_json()]
    for row, answer in zip(rows, answers, strict=True):
        assert (row["model_name"], row["model_version"]) == ("stj-classifier", "1")
        assert (row["label"], row["confidence"], row["top_k"]) == (
            answer["label"],
            answer["confidence"],
            answer["top_k"],
        )
        assert row["in_distribution"] is answer["in_distribution"] is False
        assert row["ood_score"] == pytest.approx(answer["ood_score"], abs=1e-6)
        assert row["embedding"].dtype == np.float16 and row["embedding"].shape == (2048,)
    pixels = state.decode(_jpeg((200, 30, 30)), indexed)[None]
    np.testing.assert_allclose(rows[0]["embedding"], indexed.assess(pixels).features[0], rtol=1e-2, atol=1e-3)
    assert "stj_prediction_log_written_total 4.0" in state.metrics.exposition().decode()


def test_the_log_never_waits_a_full_queue_drops_and_counts(indexed, app_for, tmp_path) -> None:
    app = app_for(tmp_path, indexed, "monitor.log_queue=2")
    state = app.extensions["stj"]
    assessed = Assessed(np.array([[0.2, 0.3, 0.5]]), np.array([0.4]), 0.3, np.ones((1, 8)))
    answer = [{"label": "jeans", "probability": 0.5}]
    for _ in range(10):
        state.log.record(ModelRef("stj-classifier", "1", "m"), assessed, 0, answer, "r")
    written = state.log.flush()
    exposition = state.metrics.exposition().decode()
    dropped = float(re.search(r"^stj_prediction_log_dropped_total (\S+)$", exposition, re.M).group(1))
    assert written <= 2 and dropped >= 6  # the writer's own flush may have taken two more in between
    assert state.log.queued == 0


def test_rows_older_than_the_retention_are_deleted_and_the_sample_is_a_share(indexed, app_for, tmp_path) -> None:
    app = app_for(tmp_path, indexed, "monitor.retention_days=30")
    log: PredictionLog = app.extensions["stj"].log
    plain = Assessed(np.array([[0.2, 0.3, 0.5]]))  # a model without an index: no verdict, no features
    log.record(ModelRef("imagenet-classifier", "2", "m"), plain, 0, [{"label": "jeans", "probability": 0.5}], "r")
    log.flush()
    now = datetime.now(UTC)
    [row] = read_log(log.database, now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert row["in_distribution"] is None and row["ood_score"] is None and row["embedding"] is None
    assert log.forget_old(now + timedelta(days=29)) == 0
    assert log.forget_old(now + timedelta(days=31)) == 1
    rare = app_for(tmp_path / "rare", indexed, "monitor.log_sample=0.000001").extensions["stj"].log
    for _ in range(200):
        rare.record(ModelRef("stj-classifier", "1", "m"), plain, 0, [{"label": "jeans", "probability": 0.5}], "r")
    assert rare.queued == 0 and rare.flush() == 0
    assert app_for(tmp_path / "off", indexed, "monitor.log_predictions=false").extensions["stj"].log is None
