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
from training.baselines import baseline_models
from training.evaluate import classification_metrics
from training.fit import fit_head


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


def cross_validate(
    features: np.ndarray, labels: np.ndarray, class_names: list[str], config: TrainConfig, folds: int, seed: int
) -> CrossValidation:
    """Stratified k-fold: fit the head (early-stopped on the held-out fold, which only picks the epoch) and
    the baselines on k-1 folds, predict the held-out one.

    Args:
        features: cached embeddings of the photos to cross-validate.
        labels: their integer classes.
        class_names: the classes, in label order.
        config: the head's hyper-parameters.
        folds: k; lowered to the smallest class's count when a class has fewer photos.
        seed: fixes the folds and every fit.
    """
    k = max(2, min(folds, int(np.bincount(labels, minlength=len(class_names)).min())))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    probabilities = {
        name: np.zeros((len(labels), len(class_names)), np.float32) for name in ("head", "knn", "decision_tree")
    }
    fold_scores: dict[str, list[dict[str, float]]] = {name: [] for name in probabilities}
    for fold, (fit_rows, held_out) in enumerate(splitter.split(features, labels)):
        train, held = (features[fit_rows], labels[fit_rows]), (features[held_out], labels[held_out])
        head, _, _ = fit_head(train, held, len(class_names), config, None, seed + fold)
        probabilities["head"][held_out] = TensorFlowRuntime(head)(held[0])
        for name, model in baseline_models(seed).items():
            model.fit(*train)
            proba = np.zeros((len(held_out), len(class_names)), np.float32)
            proba[:, model.classes_] = model.predict_proba(held[0])  # a class missing from a fold stays 0
            probabilities[name][held_out] = proba
        for name, proba in probabilities.items():
            fold_scores[name].append(classification_metrics(held[1], proba[held_out].argmax(axis=1), class_names))
    return CrossValidation(probabilities, fold_scores)
