"""The challenger in shadow, in one worker: mirrored photos are scored by `@challenger` and counted by the
champion's class, in Prometheus and in the registry (where `stj status` and `stj promote challenger` read
them); a full queue drops and counts instead of growing or blocking; removing the alias stops the mirror.
Real models in a real registry (the tiny model of tests/registry.py); the server's own path:
tests/e2e/test_releases.py."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from mlflow import MlflowClient

from core.shadow_tally import shadow_totals
from flows.settings import load_run_config
from serving.metrics import ServerMetrics
from serving.predictor import Predictor
from serving.shadow import Shadow
from serving.shadow_process import IdleChallenger, InProcessChallenger, score_uploads
from tests.registry import MODEL, make_registry
from tests.support import wait_until

pytestmark = pytest.mark.slow  # registers model versions (a TensorFlow build each)


def _photo(index: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), ((37 * index) % 256, (91 * index) % 256, (53 * index) % 256)).save(buf, "JPEG")
    return buf.getvalue()


def _top1(model: Predictor, data: bytes) -> str:
    probs, _ = score_uploads(model, [data], min_side=1)
    return model.class_names[int(np.argmax(probs[0]))]


@pytest.fixture
def shadowed(tmp_path):
    """A registry with version 1 at @champion and version 2 at @challenger, the champion loaded here, and a
    factory of :class:`Shadow` on them (closed at the end)."""
    registry = make_registry(tmp_path)
    challenger = registry.register(seed=5)
    MlflowClient(registry.uri).set_registered_model_alias(MODEL, "challenger", challenger)
    champion = Predictor.load(f"models:/{MODEL}@champion", registry.uri, runtime="tensorflow")
    made = []

    def make(*overrides: str, idle=lambda: True, load_as=InProcessChallenger) -> Shadow:
        settings = [*registry.overrides, "serve.reload_interval_s=0.1", "serve.shadow_report_s=0.1", *overrides]
        config = load_run_config("configs/demo.yaml", settings)
        shadow = Shadow(
            config,
            champion=lambda: champion,
            champion_idle=idle,
            metrics=ServerMetrics(),
            load=lambda uri: load_as(Predictor.load(uri, registry.uri, runtime="tensorflow")),
        )
        made.append(shadow)
        wait_until(lambda: shadow.challenger is not None, "the challenger to load")
        return shadow

    yield registry, champion, challenger, make
    for shadow in made:
        shadow.close()


def test_mirrored_photos_are_scored_and_counted_by_the_champions_class(shadowed) -> None:
    registry, champion, challenger, make = shadowed
    shadow = make("serve.shadow_share=1", "serve.shadow_queue=64")
    assert shadow.challenger.ref.version == challenger
    photos = [_photo(i) for i in range(24)]
    expected: dict[str, list[int]] = {}
    for data in photos:  # what the two models say on their own, each on its own input
        mine, theirs = _top1(champion, data), _top1(shadow.challenger.model, data)
        seen = expected.setdefault(mine, [0, 0])
        seen[0] += 1
        seen[1] += int(mine == theirs)
        shadow.offer(data, champion, mine)
    client = MlflowClient(registry.uri)
    wait_until(lambda: shadow_totals(client, MODEL, challenger, "1").scored == len(photos), "the tally in the registry")
    tally = shadow_totals(client, MODEL, challenger, "1")
    assert tally.classes == expected and tally.dropped == 0 and tally.p95_ms > 0
    assert tally.agreed == sum(agreed for _, agreed in expected.values())
    assert shadow_totals(client, MODEL, challenger, "7").scored == 0  # counts are per champion version
    exposition = shadow.metrics.exposition().decode()
    for label, (scored, agreed) in expected.items():
        for outcome, count in (("agree", agreed), ("disagree", scored - agreed)):
            if count:
                labels = f'challenger_version="{challenger}",champion_class="{label}",outcome="{outcome}"'
                assert f"stj_shadow_photos_total{{{labels}}} {float(count)}" in exposition


def test_a_busy_champion_leaves_the_queue_full_and_photos_dropped_never_waiting(shadowed) -> None:
    registry, champion, challenger, make = shadowed
    shadow = make("serve.shadow_share=1", "serve.shadow_queue=4", idle=lambda: False)  # the champion never idles
    for index in range(40):
        shadow.offer(_photo(index), champion, "saree")  # returns at once: put_nowait, or a drop
    assert shadow.queued <= 4
    client = MlflowClient(registry.uri)
    wait_until(lambda: shadow_totals(client, MODEL, challenger, "1").dropped >= 40 - 5, "the drops recorded")
    tally = shadow_totals(client, MODEL, challenger, "1")
    assert tally.scored == 0 and tally.dropped in (35, 36)  # 4 queued, and one held by the waiting thread
    dropped = f'stj_shadow_dropped_total{{challenger_version="{challenger}"}} {float(tally.dropped)}'
    assert dropped in shadow.metrics.exposition().decode()


class _RecordingChallenger(InProcessChallenger):
    """An in-process challenger that records the worker's pauses and resumes (the child's signals), with when."""

    def __init__(self, model: Predictor) -> None:
        super().__init__(model)
        self.calls: list[tuple[str, float]] = []

    def pause(self) -> None:
        self.calls.append(("pause", time.monotonic()))

    def resume(self) -> None:
        self.calls.append(("resume", time.monotonic()))

    @property
    def signals(self) -> list[str]:
        """The calls, without their times."""
        return [what for what, _ in self.calls]


def test_the_challenger_computes_only_after_the_worker_idled_for_the_hold(shadowed) -> None:
    registry, champion, challenger, make = shadowed
    shadow = make("serve.shadow_share=1", "serve.shadow_idle_ms=1500", load_as=_RecordingChallenger)
    recorded = shadow.challenger
    wait_until(lambda: recorded.signals == ["pause", "resume"], "installed paused, resumed once the worker idled")
    shadow.request_started()
    shadow.request_started()  # two requests overlap: one pause for the busy spell
    shadow.offer(_photo(0), champion, "saree")
    time.sleep(0.5)  # the shadow thread looks every 5 ms: it would have scored by now, were it allowed
    shadow.request_finished()
    shadow.request_finished()
    shadow.request_started()  # the next spell begins within the hold: the challenger stays paused
    shadow.request_finished()
    ended = time.monotonic()
    assert recorded.signals == ["pause", "resume", "pause"]
    assert "stj_shadow_photos_total{" not in shadow.metrics.exposition().decode()
    client = MlflowClient(registry.uri)
    wait_until(lambda: shadow_totals(client, MODEL, challenger, "1").scored == 1, "the photo scored after the hold")
    assert recorded.signals == ["pause", "resume", "pause", "resume"]
    assert recorded.calls[-1][1] - ended >= 1.5  # resumed no sooner than serve.shadow_idle_ms after the last request


def test_no_challenger_no_mirror_and_removing_the_alias_stops_it(shadowed) -> None:
    registry, champion, challenger, make = shadowed
    shadow = make("serve.shadow_share=1")
    MlflowClient(registry.uri).delete_registered_model_alias(MODEL, "challenger")
    wait_until(lambda: shadow.challenger is None, "the shadow to drop the challenger")
    shadow.offer(_photo(1), champion, "saree")
    assert shadow.queued == 0
    MlflowClient(registry.uri).set_registered_model_alias(MODEL, "challenger", challenger)
    unshared = make("serve.shadow_share=0")  # a share of 0 mirrors nothing even with a challenger
    unshared.offer(_photo(2), champion, "saree")
    assert unshared.queued == 0


def test_the_servers_challenger_decodes_and_scores_in_a_child_at_idle_priority_as_in_process(shadowed) -> None:
    import os

    import psutil

    registry, _, version, _ = shadowed
    uri = f"models:/{MODEL}/{version}"
    here = Predictor.load(uri, registry.uri, runtime="tensorflow")
    child = IdleChallenger(uri, registry.uri, "tensorflow")
    try:
        assert (child.ref.version, child.class_names) == (version, here.class_names)
        assert child.pid != os.getpid() and os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the worker itself keeps its priority
        uploads = [_photo(0), b"not a photo", _photo(1), _photo(2)]  # the child decodes, and skips what it refuses
        probs, kept = child.score(uploads, 1)
        expected, expected_kept = score_uploads(here, uploads, 1)
        assert kept == expected_kept == [0, 2, 3]
        np.testing.assert_allclose(probs, expected, atol=1e-5)
        child.pause()  # a request in flight: the child stops at once, mid-inference too
        wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_STOPPED, "the child stopped")
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(child.score, uploads[:1], 1)
            time.sleep(0.5)  # the tiny model scores one photo in milliseconds when it runs
            assert not answer.done()
            child.resume()
            assert answer.result(timeout=60)[1] == [0]
        child.pause()  # closing resumes it first: a stopped child would heed neither the request nor SIGTERM
    finally:
        child.close()
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(RuntimeError, match="RestException|not found|does not exist|No such"):
        IdleChallenger(f"models:/{MODEL}/99", registry.uri, "tensorflow")  # the child's load error, in one line
