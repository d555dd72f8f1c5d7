"""Baselines on the same cached embeddings and split: k-nearest neighbours and a decision tree.

Each gets the same test metrics as the CNN head plus its per-image prediction time, so the comparison
table says what the head buys. They fit on at most :data:`FIT_CAP` training photos (a stratified sample
beyond that), so their cost stays linear in N: exact kNN on every pair would be O(N² D), hours at 600 000.

Config keys: ``project.seed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from training.evaluation.evaluate import classification_metrics

FIT_CAP = 20_000  # kNN: 20 000 × 1 280 floats (100 MB) to search per test photo; minutes for 120 000 test photos
log = logging.getLogger(__name__)


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


def fit_rows(labels: np.ndarray, seed: int, cap: int | None = None) -> np.ndarray:
    """The rows the baselines fit on: all of them up to ``cap``, else a stratified sample of ``cap`` (seeded,
    in row order); ``cap`` defaults to :data:`FIT_CAP`. Exact kNN then costs O(test × cap × D) and the tree
    O(cap log cap × D): linear in N."""
    cap = FIT_CAP if cap is None else cap
    if len(labels) <= cap:
        return np.arange(len(labels))
    rows, _ = train_test_split(np.arange(len(labels)), train_size=cap, stratify=labels, random_state=seed)
    return np.sort(rows)


def fitted_baselines(train: tuple[np.ndarray, np.ndarray], seed: int) -> dict[str, Any]:
    """:func:`baseline_models` fitted on :func:`fit_rows` of ``train``."""
    rows = fit_rows(train[1], seed)
    if len(rows) < len(train[1]):
        log.info("baselines fit on a stratified sample of %d of %d photos", len(rows), len(train[1]))
    models = baseline_models(seed)
    for model in models.values():
        model.fit(train[0][rows], train[1][rows])
    return models


def score_baselines(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], class_names: Sequence[str], seed: int
) -> list[ModelScore]:
    """Fit the baselines (:func:`fitted_baselines`); score them on the whole test split."""
    scores = []
    for name, model in fitted_baselines(train, seed).items():
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
