"""Baselines on the same cached embeddings and split: k-nearest neighbours and a decision tree.

Each gets the same test metrics as the CNN head plus its per-image prediction time, so the comparison
table says what the head buys.

Config keys: ``project.seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from training.evaluate import classification_metrics


@dataclass(frozen=True)
class ModelScore:
    """A model's test metrics and its mean prediction time for one image (features given)."""

    name: str
    metrics: dict[str, float]
    ms_per_image: float


def ms_per_image(predict: Callable[[np.ndarray], np.ndarray], features: np.ndarray, limit: int = 50) -> float:
    """Mean milliseconds to predict one image at a time (batch of 1), over up to ``limit`` images."""
    rows = features[:limit]
    predict(rows[:1])  # warm-up
    started = time.perf_counter()
    for i in range(len(rows)):
        predict(rows[i : i + 1])
    return 1000 * (time.perf_counter() - started) / max(1, len(rows))


def baseline_models(seed: int) -> dict[str, Any]:
    """Fresh, unfitted baselines: KNN (k=5 on standardised features) and a decision tree."""
    return {
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5)),
        "decision_tree": DecisionTreeClassifier(random_state=seed, min_samples_leaf=2),
    }


def score_baselines(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], class_names: Sequence[str], seed: int
) -> list[ModelScore]:
    """Fit the baselines (:func:`baseline_models`); score them on the test split."""
    scores = []
    for name, model in baseline_models(seed).items():
        model.fit(*train)
        predictions = model.predict(test[0])
        scores.append(
            ModelScore(
                name, classification_metrics(test[1], predictions, class_names), ms_per_image(model.predict, test[0])
            )
        )
    return scores


def comparison_table(scores: Sequence[ModelScore]) -> str:
    """A Markdown table: accuracy, macro precision/recall/F1 and ms per image, one row per model."""
    lines = [
        "| model | accuracy | precision (macro) | recall (macro) | F1 (macro) | ms / image |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        m = s.metrics
        lines.append(
            f"| {s.name} | {m['test_accuracy']:.3f} | {m['test_macro_precision']:.3f} | {m['test_macro_recall']:.3f} "
            f"| {m['test_macro_f1']:.3f} | {s.ms_per_image:.3f} |"
        )
    return "\n".join(lines) + "\n"
