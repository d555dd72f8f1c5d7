"""The drift checks and the monitor's verdict on synthetic windows with fixed seeds: unshifted windows raise
no more false alarms than each check's p-value threshold allows, shifted ones are found, the verdict needs half
the checks, a short window is not judged, and the report escapes what it shows."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from configs.schema import MonitorConfig
from core.ood import unit_rows
from core.traffic_baseline import TrafficBaseline
from serving import drift
from serving.monitor import Window, judge, render_html

CLASSES = ["saree", "trousers", "jeans"]
WINDOWS = 200


def _features(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    centre = np.r_[np.ones(4), np.zeros(12)]
    return unit_rows(centre + rng.normal(0, 0.5, (rows, 16)) + shift * np.r_[np.zeros(12), np.ones(4)])


@pytest.mark.parametrize("check", ["class mix", "confidence", "none-of-these rate", "embeddings"])
def test_each_check_alarms_on_at_most_its_p_value_share_of_unshifted_windows(check) -> None:
    alarms = 0
    for seed in range(WINDOWS if check != "embeddings" else 60):
        rng = np.random.default_rng(seed)
        if check == "class mix":
            found = drift.class_mix(rng.integers(0, 3, 120), rng.integers(0, 3, 60), CLASSES, 0.05, 0.1)
        elif check == "confidence":
            found = drift.confidence(rng.beta(6, 2, 120), rng.beta(6, 2, 60), 0.05, 0.1)
        elif check == "none-of-these rate":
            found = drift.ood_rate(rng.random(120) < 0.05, rng.random(60) < 0.05, 0.05, 0.1)
        else:
            found = drift.embeddings(_features(rng, 60), _features(rng, 40), 0.05, seed)
        alarms += found.drifted
    assert alarms / (WINDOWS if check != "embeddings" else 60) <= 0.1  # nominal 0.05, with room for chance


def test_each_check_finds_its_shift() -> None:
    rng = np.random.default_rng(7)
    assert drift.class_mix(rng.integers(0, 3, 120), np.zeros(60, int), CLASSES, 0.05, 0.1).drifted
    assert drift.confidence(rng.beta(6, 2, 120), rng.beta(2, 2, 60), 0.05, 0.1).drifted
    assert drift.ood_rate(rng.random(120) < 0.02, rng.random(60) < 0.3, 0.05, 0.1).drifted
    assert not drift.ood_rate(rng.random(120) < 0.3, rng.random(60) < 0.02, 0.05, 0.1).drifted  # fewer: fine
    assert drift.embeddings(_features(rng, 60), _features(rng, 40, shift=1.0), 0.05, 1).drifted


def test_big_baselines_switch_to_distances() -> None:
    rng = np.random.default_rng(3)
    mix = drift.class_mix(rng.integers(0, 3, 1500), rng.integers(0, 3, 800), CLASSES, 0.05, 0.1)
    assert mix.method == "Jensen-Shannon distance" and not mix.drifted
    shifted = drift.confidence(rng.beta(6, 2, 1500), rng.beta(2, 2, 800), 0.05, 0.1)
    assert shifted.method == "Wasserstein distance (normed)" and shifted.drifted


def _baseline(rng: np.random.Generator) -> TrafficBaseline:
    return TrafficBaseline(
        CLASSES,
        labels=rng.integers(0, 3, 120),
        confidences=rng.beta(6, 2, 120).astype(np.float32),
        ood_scores=rng.random(120).astype(np.float32) * 0.2,
        threshold=0.19,
        features=_features(rng, 80),
    )


def _window(rng: np.random.Generator, rows: int, shift: float = 0.0) -> Window:
    window, draw = Window(), random.Random(0)
    index = {name: i for i, name in enumerate(CLASSES)}
    labels = rng.integers(0, 3, rows) if not shift else np.zeros(rows, int)
    for label, vector in zip(labels, _features(rng, rows, shift), strict=True):
        row = {
            "label": CLASSES[label],
            "confidence": float(rng.beta(6, 2) if not shift else rng.beta(2, 2)),
            "in_distribution": bool(rng.random() > (0.02 if not shift else 0.5)),
            "embedding": vector.astype(np.float16),
        }
        window.add(row, index, keep=50, rng=draw)
    return window


def test_the_verdict_needs_half_the_checks_and_a_short_window_is_not_judged() -> None:
    rng = np.random.default_rng(11)
    baseline, settings = _baseline(rng), MonitorConfig()
    about = ("stj-classifier", "3", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    calm = judge(_window(rng, 80), baseline, settings, 42, about)
    assert calm.drifted is False and calm.predictions == 80 and calm.headline.startswith("drift: no - ")
    shifted = judge(_window(rng, 80, shift=1.0), baseline, settings, 42, about)
    assert shifted.drifted is True and sum(c.drifted for c in shifted.checks) >= 2
    assert "drift: yes - " in shifted.headline and "80 predictions of stj-classifier version 3" in shifted.headline
    short = judge(_window(rng, settings.min_predictions - 1), baseline, settings, 42, about)
    assert short.drifted is None and short.checks == [] and short.headline.startswith("drift: not judged")


def test_the_window_keeps_a_bounded_deterministic_sample_of_embeddings() -> None:
    rng = np.random.default_rng(5)
    first, second = _window(np.random.default_rng(5), 500), _window(rng, 500)
    assert len(first.embeddings) == 50 and first.seen_embeddings == 500 and len(first.labels) == 500
    assert all(np.array_equal(a, b) for a, b in zip(first.embeddings, second.embeddings, strict=True))
    window, draw = Window(), random.Random(1)
    for i in range(100):  # row i's embedding is i everywhere: which rows the reservoir kept
        window.add(
            {"label": "jeans", "confidence": 0.9, "in_distribution": True, "embedding": np.full(4, i)},
            {"jeans": 0},
            5,
            draw,
        )
    kept = sorted(int(vector[0]) for vector in window.embeddings)
    assert len(kept) == 5 and max(kept) >= 5  # not simply the first five


def test_the_report_page_shows_the_headline_and_escapes_names() -> None:
    rng = np.random.default_rng(2)
    about = ("<b>model</b>", "1", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    page = render_html(judge(_window(rng, 60), _baseline(rng), MonitorConfig(), 1, about))
    assert "&lt;b&gt;model&lt;/b&gt;" in page and "<b>model</b>" not in page
    assert "drift: no - " in page and "<script" not in page
