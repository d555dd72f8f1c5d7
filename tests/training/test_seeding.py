"""The random base and the head's initial weights are functions of the seed alone, whatever other threads do."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import keras
import numpy as np

from core.model import build_frozen, build_head, weights_fingerprint


def _while_another_thread_draws_random(build: Callable[[], keras.Model]) -> keras.Model:
    """Build while a busy thread draws from Python's global ``random`` (as Prefect's and the scraper's do)."""
    stop = threading.Event()

    def draw() -> None:
        while not stop.is_set():
            random.random()
            time.sleep(0.0002)  # yield the GIL: interleave with the build, do not starve it

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        return build()
    finally:
        stop.set()
        thread.join()


def test_random_base_depends_on_the_seed_only() -> None:
    alone = weights_fingerprint(build_frozen("resnet50", 32, seed=7)[0])
    disturbed = weights_fingerprint(_while_another_thread_draws_random(lambda: build_frozen("resnet50", 32, seed=7)[0]))
    assert disturbed == alone
    assert weights_fingerprint(build_frozen("resnet50", 32, seed=8)[0]) != alone


def test_head_initial_weights_depend_on_the_seed_only() -> None:
    features = np.random.default_rng(0).normal(size=(10, 2048)).astype(np.float32)
    alone = build_head(3, (16, 8), (0.3, 0.2), features, seed=5).get_weights()
    disturbed = _while_another_thread_draws_random(
        lambda: build_head(3, (16, 8), (0.3, 0.2), features, seed=5)
    ).get_weights()
    for a, b in zip(alone, disturbed, strict=True):
        np.testing.assert_array_equal(a, b)
    other = build_head(3, (16, 8), (0.3, 0.2), features, seed=6).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(alone, other, strict=True))
