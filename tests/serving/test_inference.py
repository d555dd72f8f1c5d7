"""The inference service: micro-batching, one bounded queue for every inference route, hot reload."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from configs.schema import ServeConfig
from serving.batcher import MicroBatcher, Overloaded
from serving.inference import InferenceService
from serving.predictor import Assessed
from serving.reloader import ModelHolder, check_for_new_version
from tests.support import wait_until


class _SlowModel:
    """Stands in for a model under load: records batch sizes, takes 50 ms per call."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, pixels):
        time.sleep(0.05)
        self.batches.append(len(pixels))
        return np.tile([0.2, 0.3, 0.5], (len(pixels), 1))

    def assess(self, pixels) -> Assessed:
        return Assessed(self.predict(pixels))  # what the batcher calls: a model without an OOD index


def test_micro_batcher_groups_requests_and_sheds_load() -> None:
    model = _SlowModel()
    batcher = MicroBatcher(max_batch=8, max_wait_ms=20, queue_size=4)
    results, errors = [], []

    def call():
        try:
            results.append(batcher.submit(np.zeros((2, 2, 3)), model)[0])
        except Overloaded as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors, "a queue of 4 must refuse some of 16 simultaneous requests"
    assert len(results) + len(errors) == 16
    assert max(model.batches) > 1  # requests were grouped


def test_hot_reload_swaps_and_survives_failures(make_predictor) -> None:
    predictor = make_predictor()
    seen = []
    holder = ModelHolder(predictor, on_swap=lambda current: seen.append(current.ref.version))
    assert not check_for_new_version(holder, lambda: "1", lambda v: pytest.fail("no reload for the same version"))
    assert not check_for_new_version(holder, lambda: "2", lambda v: (_ for _ in ()).throw(OSError("disk gone")))
    assert holder.current() is predictor and "disk gone" in holder.last_error
    assert not check_for_new_version(holder, lambda: "1", lambda v: pytest.fail("no reload"))
    assert holder.last_error is None  # the alias was put back on the served version: /ready is clean again
    newer = make_predictor("2")
    assert check_for_new_version(holder, lambda: "2", lambda v: newer)
    assert holder.current().ref.version == "2" and holder.last_error is None
    assert seen == ["1", "2"]  # told of the first model and of the swap, not of the failed load


def test_lone_request_does_not_wait_for_companions() -> None:
    model = _SlowModel()
    model.predict = lambda pixels: np.tile([0.2, 0.3, 0.5], (len(pixels), 1))  # instant
    batcher = MicroBatcher(max_batch=8, max_wait_ms=300, queue_size=4)
    started = time.perf_counter()
    for _ in range(3):
        batcher.submit(np.zeros((2, 2, 3)), model)
    assert time.perf_counter() - started < 0.3  # three sequential requests, none waited the 300 ms


def test_a_batch_request_is_one_job_answered_by_one_model() -> None:
    model = _SlowModel()
    batcher = MicroBatcher(max_batch=4, max_wait_ms=1, queue_size=8)
    rows, used = batcher.submit_many(np.zeros((6, 2, 2, 3)), model)  # more images than max_batch: still one call
    assert used is model and len(rows.probs) == 6 and model.batches == [6]


def test_a_batch_groups_only_jobs_of_one_model() -> None:
    """Requests that resolved different models (an alias moved between them) are never batched together,
    even when their inputs could not be stacked: each is answered by the model it was decoded for."""
    small, large = _SlowModel(), _SlowModel()
    batcher = MicroBatcher(max_batch=16, max_wait_ms=200, queue_size=32)
    answers: list[tuple[str, object]] = []

    def call(model, side):
        answers.append((side, batcher.submit(np.zeros((side, side, 3)), model)[1]))

    threads = [threading.Thread(target=call, args=((small, 2) if i % 2 else (large, 3))) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(answers, key=lambda a: a[0]) == [(2, small)] * 6 + [(3, large)] * 6
    assert sum(small.batches) == sum(large.batches) == 6  # each model computed exactly its own six


def test_a_failed_model_call_fails_each_of_its_jobs_and_the_batcher_goes_on() -> None:
    model, calls = _SlowModel(), []
    healthy = model.predict

    def predict(pixels):
        calls.append(len(pixels))
        if len(calls) == 1:
            raise MemoryError("the model ran out of memory")
        return healthy(pixels)

    model.predict = predict
    batcher = MicroBatcher(max_batch=8, max_wait_ms=1, queue_size=8)
    with pytest.raises(MemoryError, match="ran out of memory"):
        batcher.submit(np.zeros((2, 2, 3)), model)
    assert batcher.submit(np.zeros((2, 2, 3)), model)[0].probs[0].tolist() == [0.2, 0.3, 0.5]  # the next job is served


def test_a_job_the_model_never_answers_gets_overloaded(monkeypatch) -> None:
    monkeypatch.setattr("serving.batcher.JOB_TIMEOUT_S", 0.2)
    model = _Blocking()
    batcher = MicroBatcher(max_batch=8, max_wait_ms=1, queue_size=8)
    try:
        with pytest.raises(Overloaded, match="timed out"):
            batcher.submit(np.zeros((2, 2, 3)), model)
    finally:
        model.release.set()


def test_a_closed_service_finishes_its_queued_work_then_its_threads_end() -> None:
    model = _Blocking()
    before = set(threading.enumerate())
    service = InferenceService(ServeConfig(), on_batch=lambda n: None)
    workers = set(threading.enumerate()) - before
    answers = []
    callers = [
        threading.Thread(target=lambda: answers.append(service.predict(np.zeros((2, 2, 3)), model))) for _ in "ab"
    ]
    callers[0].start()
    assert model.entered.wait(10)  # the first is running
    callers[1].start()
    wait_until(lambda: service._batcher.admission.waiting == 1, "the second to queue")  # the second is queued
    service.close()
    model.release.set()
    for thread in [*callers, *workers]:
        thread.join(10)
    assert len(answers) == 2 and len(workers) == 2 and not any(w.is_alive() for w in workers)


def test_a_failed_explanation_is_handed_to_its_request() -> None:
    service = InferenceService(ServeConfig(), on_batch=lambda n: None)
    with pytest.raises(AttributeError):
        service.explain(np.zeros((2, 2, 3)), object())  # no model to explain
    service.close()


class _Blocking:
    """A model whose every call waits until the test releases it, so requests pile up in the queue."""

    def __init__(self) -> None:
        self.release, self.entered = threading.Event(), threading.Event()
        self.class_names = ["a", "b", "c"]
        self.model = self  # what an explanation reads (its Grad-CAM is the test's own, which waits too)

    def predict(self, pixels):
        self.entered.set()
        self.release.wait(10)
        return np.tile([0.2, 0.3, 0.5], (len(pixels), 1))

    def assess(self, pixels) -> Assessed:
        return Assessed(self.predict(pixels))


def test_every_inference_route_waits_in_the_same_bounded_queue(monkeypatch) -> None:
    """Predictions, batches and explanations share one limit: once it is full, each of them is refused."""
    import serving.inference

    model, explaining = _Blocking(), threading.Event()

    def grad_cam(m, pixels):
        explaining.set()
        model.release.wait(10)
        return None, 0

    monkeypatch.setattr(serving.inference, "grad_cam", grad_cam)
    service = InferenceService(ServeConfig(queue_size=2, max_batch=1, max_wait_ms=0), lambda n: None)
    pixel = np.zeros((2, 2, 3), np.float32)
    calls = [
        threading.Thread(target=service.predict, args=(pixel, model)),  # runs (blocks the batcher)
        threading.Thread(target=service.explain, args=(pixel, model)),  # runs (blocks the serial lane)
        threading.Thread(target=service.predict, args=(pixel, model)),  # waits: 1 of 2 places
        threading.Thread(target=service.predict_many, args=([pixel, pixel], model)),  # waits: 2 of 2
    ]
    admission = service._batcher.admission
    running_first = (model.entered, explaining, explaining, explaining)
    for thread, running, queued in zip(calls, running_first, (0, 0, 1, 2), strict=True):
        thread.start()  # in order: each is running or queued before the next arrives
        wait_until(lambda r=running, q=queued: r.is_set() and admission.waiting == q, f"{queued} queued")
    for attempt in (
        lambda: service.predict(pixel, model),
        lambda: service.predict_many([pixel], model),
        lambda: service.explain(pixel, model),
    ):
        with pytest.raises(Overloaded):
            attempt()
    model.release.set()
    for thread in calls:
        thread.join(10)
    assert service.predict(pixel, model)[1] is model  # places are given back


def test_overloaded_explain_and_batch_get_503_with_retry_after(make_predictor, app_for, tmp_path) -> None:
    app = app_for(tmp_path, make_predictor(), "serve.queue_size=1")
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(buf, "PNG")
    state = app.extensions["stj"]
    state.models.routes["stj"].inference._batcher.admission.waiting = 1  # as if one request were already waiting
    http = app.test_client()
    for route, data in (
        ("/predict", {"image": (io.BytesIO(buf.getvalue()), "a.png")}),
        ("/predict/batch", {"images": [(io.BytesIO(buf.getvalue()), "a.png")]}),
        ("/explain", {"image": (io.BytesIO(buf.getvalue()), "a.png")}),
    ):
        resp = http.post(route, data=data)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "1", route
        assert resp.get_json()["error"]["code"] == "overloaded"
