"""k-fold cross-validation on cached embeddings: every photo of the training part gets predicted
probabilities from a head (and the baselines) that never saw it. The same out-of-fold run gives the
cross-validation report (mean ± std of accuracy and macro-F1 per model) and the label-quality scores.

Config keys: ``train.*`` (the head's hyper-parameters), ``labels.folds``, ``project.seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from configs.schema import TrainConfig
from core.runtime import TensorFlowRuntime
from training.evaluation.evaluate import classification_metrics
from training.fitting.baselines import fitted_baselines
from training.fitting.fit import fit_head


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold probabilities per model (rows in input order) and each fold's scores."""

    probabilities: dict[str, np.ndarray]
    fold_scores: dict[str, list[dict[str, float]]]

    def summary(self) -> dict[str, float]:
        """``cv_<model>_<metric>_mean`` and ``_std`` for accuracy and macro-F1 (MLflow metric names)."""
        out = {}
        for model, folds in self.fold_scores.items():
            for metric in ("accuracy", "macro_f1"):
                values = np.array([f[f"test_{metric}"] for f in folds])
                out[f"cv_{model}_{metric}_mean"] = float(values.mean())
                out[f"cv_{model}_{metric}_std"] = float(values.std())
        return out

    def table(self) -> str:
        """The report as a Markdown table."""
        s = self.summary()
        lines = ["| model | accuracy | macro F1 |", "|---|---|---|"]
        for model in self.fold_scores:
            acc, f1 = (
                f"{s[f'cv_{model}_{m}_mean']:.3f} ± {s[f'cv_{model}_{m}_std']:.3f}" for m in ("accuracy", "macro_f1")
            )
            lines.append(f"| {model} | {acc} | {f1} |")
        return "\n".join(lines) + "\n"


def fold_rows(labels: np.ndarray, n_classes: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (fit rows, held-out rows) pairs; k is lowered to the smallest class's count."""
    k = max(2, min(folds, int(np.bincount(labels, minlength=n_classes).min())))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(labels), 1)), labels))


def fit_fold(
    features: np.ndarray,
    labels: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    config: TrainConfig,
    seed: int,
) -> dict[str, np.ndarray]:
    """One fold: fit the head (early-stopped on the held-out rows, which only picks the epoch) and the
    baselines (each on at most its ``training.fitting.baselines.FIT_CAPS`` of them) on the fit rows; each
    model's probabilities for the held-out rows. Independent of every other fold, so folds can run anywhere
    (``orchestration.task_runner: dask``)."""
    fit_rows, held_out = rows
    train, held = (features[fit_rows], labels[fit_rows]), (features[held_out], labels[held_out])
    head, _, _ = fit_head(train, held, n_classes, config, None, seed)
    out = {"head": TensorFlowRuntime(head)(held[0])}
    for name, model in fitted_baselines(train, seed).items():
        proba = np.zeros((len(held_out), n_classes), np.float32)
        proba[:, model.classes_] = model.predict_proba(held[0])  # a class missing from a fold stays 0
        out[name] = proba
    return out


def combine_folds(
    labels: np.ndarray,
    class_names: list[str],
    rows: list[tuple[np.ndarray, np.ndarray]],
    fold_probabilities: list[dict[str, np.ndarray]],
) -> CrossValidation:
    """The folds' held-out probabilities put back in input order, and each fold's scores."""
    probabilities: dict[str, np.ndarray] = {}
    fold_scores: dict[str, list[dict[str, float]]] = {}
    for (_, held_out), fold in zip(rows, fold_probabilities, strict=True):
        for name, proba in fold.items():
            probabilities.setdefault(name, np.zeros((len(labels), len(class_names)), np.float32))[held_out] = proba
            scores = classification_metrics(labels[held_out], proba.argmax(axis=1), class_names)
            fold_scores.setdefault(name, []).append(scores)
    return CrossValidation(probabilities, fold_scores)


def cross_validate(
    features: np.ndarray, labels: np.ndarray, class_names: list[str], config: TrainConfig, folds: int, seed: int
) -> CrossValidation:
    """Stratified k-fold on the head and the baselines, every fold here (see :func:`fit_fold`).

    Args:
        features: cached embeddings of the photos to cross-validate.
        labels: their integer classes.
        class_names: the classes, in label order.
        config: the head's hyper-parameters.
        folds: k; lowered to the smallest class's count when a class has fewer photos.
        seed: fixes the folds and every fit (fold i fits with ``seed + i``).
    """
    rows = fold_rows(labels, len(class_names), folds, seed)
    fits = [fit_fold(features, labels, r, len(class_names), config, seed + i) for i, r in enumerate(rows)]
    return combine_folds(labels, class_names, rows, fits)
