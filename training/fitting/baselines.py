"""Baselines on the same cached embeddings and split: k-nearest neighbours and a decision tree.

Each gets the same test metrics as the CNN head plus its per-image prediction time, so the comparison
table says what the head buys. Each fits on at most its :data:`FIT_CAPS` training photos (a stratified
sample beyond that), so their cost stays linear in N: exact kNN on every pair would be O(N² D), hours at
600 000, and a tree weighs every one of D features at every node.

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

# kNN: 20 000 × 1 280 floats (100 MB) to search per test photo; minutes for 120 000 test photos. The tree:
# measured on 2 cores, 50 s to fit 20 000 × 1 280 features (once per run and once per label-check fold: a
# third of a 60 000-photo run's time after the embedding), ~10 s on 5 000.
FIT_CAPS = {"knn": 20_000, "decision_tree": 5_000}
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


def fit_rows(labels: np.ndarray, seed: int, cap: int) -> np.ndarray:
    """The rows a baseline fits on: all of them up to ``cap``, else a stratified sample of ``cap`` (seeded,
    in row order). Exact kNN then costs O(test × cap × D) and the tree O(cap log cap × D): linear in N."""
    if len(labels) <= cap:
        return np.arange(len(labels))
    rows, _ = train_test_split(np.arange(len(labels)), train_size=cap, stratify=labels, random_state=seed)
    return np.sort(rows)


def fitted_baselines(train: tuple[np.ndarray, np.ndarray], seed: int) -> dict[str, Any]:
    """:func:`baseline_models`, each fitted on :func:`fit_rows` of ``train`` up to its :data:`FIT_CAPS`."""
    models = baseline_models(seed)
    for name, model in models.items():
        rows = fit_rows(train[1], seed, FIT_CAPS[name])
        if len(rows) < len(train[1]):
            log.info("%s fits on a stratified sample of %d of %d photos", name, len(rows), len(train[1]))
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
