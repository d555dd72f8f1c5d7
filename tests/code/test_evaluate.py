"""Evaluation numbers equal scikit-learn's; the quality gate decides as specified."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report, roc_auc_score

from configs.schema import CLASS_NAMES_DEFAULT
from training.evaluation.evaluate import classification_metrics, confusion_matrix_png, roc_auc, roc_curves_png
from training.publishing.gate import Scores, decide

CLASSES = list(CLASS_NAMES_DEFAULT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn_report(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 3, 200))
    ours = classification_metrics(y_true, y_pred, CLASSES)
    report = classification_report(y_true, y_pred, target_names=CLASSES, output_dict=True, zero_division=0)
    assert ours["test_accuracy"] == pytest.approx(report["accuracy"], abs=1e-12)
    for name in CLASSES:
        for metric, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours[f"test_{name}_{metric}"] == pytest.approx(report[name][key], abs=1e-12)
    for avg in ("macro", "weighted"):
        assert ours[f"test_{avg}_f1"] == pytest.approx(report[f"{avg} avg"]["f1-score"], abs=1e-12)


def test_auc_equals_sklearn_one_vs_rest() -> None:
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 3, 150)
    probs = rng.dirichlet([1, 1, 1], 150) + np.eye(3)[y_true] * 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    ours = roc_auc(y_true, probs, CLASSES)
    expected = roc_auc_score(y_true, probs, multi_class="ovr", average="macro")
    assert ours["test_macro_auc"] == pytest.approx(expected, abs=1e-12)
    assert roc_curves_png(y_true, probs, CLASSES).startswith(b"\x89PNG")
    assert confusion_matrix_png(y_true, probs.argmax(1), CLASSES).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("candidate", "champion", "margin", "floor", "promote"),
    [
        (0.70, None, 0.0, 0.5, True),  # first model above the floor
        (0.40, None, 0.0, 0.5, False),  # first model below the floor
        (0.80, 0.80, 0.0, 0.0, False),  # only as good as the champion: nothing gained by a swap
        (0.81, 0.80, 0.0, 0.0, True),  # better
        (0.80, 0.79, 0.02, 0.0, False),  # better, but not by the margin
        (0.79, 0.80, 0.0, 0.0, False),  # worse
        (0.95, 0.80, 0.02, 0.9, True),
    ],
)
def test_gate(candidate, champion, margin, floor, promote) -> None:
    decision = decide(Scores(candidate), None if champion is None else Scores(champion), margin, floor)
    assert decision.promote is promote
    assert f"{candidate:.4f}" in decision.reason


def test_gate_refuses_a_class_that_drops_beyond_the_tolerance() -> None:
    champion = Scores(0.80, {"saree": 0.90, "trousers": 0.70, "jeans": 0.80})
    better_overall = Scores(0.82, {"saree": 0.99, "trousers": 0.62, "jeans": 0.85})
    refused = decide(better_overall, champion, margin=0.0, floor=0.0, class_tolerance=0.05)
    assert not refused.promote
    assert refused.reason == "trousers F1 0.6200 is 0.0800 below the champion's 0.7000 (tolerance 0.0500)"
    assert decide(better_overall, champion, margin=0.0, floor=0.0, class_tolerance=0.1).promote
