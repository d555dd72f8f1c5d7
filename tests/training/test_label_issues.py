"""Cross-validation and label issues on synthetic embeddings: flipped labels are ranked first, every photo
gets out-of-fold probabilities, and the report has mean ± std for the head and the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from configs.schema import TrainConfig
from training.fitting.crossval import cross_validate
from training.labels.label_issues import ISSUE_COLUMNS, rank_label_issues

CLASSES = ["saree", "trousers", "jeans"]


def _clusters(n_per_class: int = 40, flips: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 4
    truth = np.repeat(np.arange(3), n_per_class)
    features = (centres[truth] + rng.normal(size=(len(truth), 32))).astype(np.float32)
    given = truth.copy()
    flipped = rng.choice(len(truth), flips, replace=False)
    given[flipped] = (truth[flipped] + 1) % 3
    return features, given, flipped


def test_flipped_labels_are_found_first_and_the_report_covers_every_model() -> None:
    features, given, flipped = _clusters()
    cv = cross_validate(features, given, CLASSES, TrainConfig(epochs=15, patience=5, batch_size=16), folds=5, seed=1)
    for proba in cv.probabilities.values():
        assert proba.shape == (len(given), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    assert set(cv.fold_scores) == {"head", "knn", "decision_tree"} and all(len(f) == 5 for f in cv.fold_scores.values())
    summary = cv.summary()
    assert summary["cv_head_accuracy_mean"] > 0.85 and summary["cv_head_accuracy_std"] >= 0
    assert "| head |" in cv.table() and " ± " in cv.table()

    rows = pd.DataFrame({"asin": [f"A{i}" for i in range(len(given))], "image_id": [f"i{i}" for i in range(len(given))],
                         "path": [f"raw/{i}.jpg" for i in range(len(given))],
                         "sha256": [f"{i:064x}" for i in range(len(given))]})  # fmt: skip
    issues = rank_label_issues(rows, given, cv.probabilities["head"], CLASSES)
    assert list(issues.columns) == ISSUE_COLUMNS
    wrong = {f"i{i}" for i in flipped}
    assert len(set(issues["image_id"].head(len(flipped))) & wrong) >= len(flipped) - 1  # cleanlab's thresholds
    assert issues["score"].is_monotonic_increasing
    first = issues.iloc[0]
    assert first["given_class"] != first["suggested_class"]
