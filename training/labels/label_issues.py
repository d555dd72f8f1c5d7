"""Label issues: photos whose scraped label is probably wrong (a search for "men jeans" returns belts and
shirts). Out-of-fold probabilities of the head (``training.fitting.crossval``) on the training part — train and
validation photos, never test — go to cleanlab, which ranks each photo's label quality and flags the likely
issues. The run logs ``label_issues.csv``, a gallery and the cross-validation report; the same file in the
data folder lets the next run leave those photos out (``split.exclude_label_issues``).

Config keys: ``labels.*``, ``project.data_dir``, ``project.seed``, ``train.*``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from configs.files import atomic_write_text
from configs.schema import Config
from core.manifest import manifest_path, read_manifest
from training.embedding.features import read_class_split
from training.embedding.store import StoredVectors
from training.evaluation.evaluate import photo_grid_png
from training.fitting.crossval import combine_folds, cross_validate, fold_rows

log = logging.getLogger(__name__)
ISSUES_NAME = "label_issues.csv"
ISSUE_COLUMNS = ["asin", "image_id", "path", "sha256", "given_class", "suggested_class", "score"]


def issues_path(data_dir: str | Path) -> Path:
    """Where the last run's label issues are kept under a data folder."""
    return Path(data_dir) / ISSUES_NAME


def rank_label_issues(
    rows: pd.DataFrame, labels: np.ndarray, pred_probs: np.ndarray, class_names: list[str]
) -> pd.DataFrame:
    """The photos cleanlab flags as likely mislabelled, worst first.

    Args:
        rows: one row per photo with ``asin``, ``image_id``, ``path`` and ``sha256``, in the order of ``labels``.
        labels: the given (scraped) classes as integers.
        pred_probs: out-of-fold predicted probabilities, one row per photo.
        class_names: the classes, in label order.

    Returns:
        :data:`ISSUE_COLUMNS`; ``score`` is cleanlab's label quality (0: surely wrong, 1: surely right).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    scores = get_label_quality_scores(labels, pred_probs)
    flagged = find_label_issues(labels, pred_probs, n_jobs=1)  # its worker pool needs fork-shared globals
    names = np.array(class_names)
    table = rows.reset_index(drop=True).assign(
        given_class=names[labels], suggested_class=names[pred_probs.argmax(axis=1)], score=scores.round(6)
    )
    return table[flagged].sort_values("score", kind="stable")[ISSUE_COLUMNS].reset_index(drop=True)


def read_issues(data_dir: str | Path) -> pd.DataFrame:
    """The last run's label issues (empty when none were written)."""
    file = issues_path(data_dir)
    return pd.read_csv(file, dtype=str) if file.exists() else pd.DataFrame(columns=ISSUE_COLUMNS)


@dataclass(frozen=True)
class CvRows:
    """The photos cross-validated (train and validation, never test), their stored features and the folds."""

    photos: pd.DataFrame  # split rows: path, class, sha256, split
    labels: np.ndarray
    vectors: StoredVectors
    folds: list


def _cv_rows(config: Config, split_file: Path, embeddings: tuple[str, str]) -> CvRows:
    """The cross-validated photos of the split, by reference to the features the train stage stored
    (``embeddings``: the store's folder and key, from :class:`training.runs.train.TrainResult`): no base is built."""
    split = read_class_split(config, split_file)
    photos = split[split["split"] != "test"].reset_index(drop=True)
    labels = photos["class"].map({c: i for i, c in enumerate(config.class_names)}).to_numpy()
    folds = fold_rows(labels, len(config.class_names), config.labels.folds, config.project.seed)
    return CvRows(photos, labels, StoredVectors(*embeddings, list(photos["sha256"])), folds)


def cv_inputs(config: Config, split_file: Path, embeddings: tuple[str, str]) -> tuple[StoredVectors, np.ndarray, list]:
    """What each fold of the cross-validation needs, to run it elsewhere with
    :func:`training.fitting.crossval.fit_fold`: the stored features of the cross-validated photos (by reference: each
    fold task reads them from the store, nothing pickled per task), their labels, and the folds' (fit rows,
    held-out rows). :func:`check_labels` takes the folds' results back."""
    cv = _cv_rows(config, split_file, embeddings)
    return cv.vectors, cv.labels, cv.folds


def check_labels(
    config: Config,
    split_file: Path,
    run_id: str,
    embeddings: tuple[str, str],
    folds: list[dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Cross-validate on the stored embeddings of the training part, rank label issues, write
    ``<data_dir>/label_issues.csv`` and log it, its gallery and the cross-validation report to ``run_id``.

    Args:
        embeddings: the store (folder, key) of the candidate's features, as the train stage hands it on.
        folds: each fold's :func:`training.fitting.crossval.fit_fold` result, in fold order, computed elsewhere (see
            :func:`cv_inputs`); by default every fold runs here.

    Returns:
        ``issues`` (how many were flagged), ``worst`` (up to five rows) and the cross-validation summary.
    """
    rows = _cv_rows(config, split_file, embeddings)
    names, labels = list(config.class_names), rows.labels
    if folds is None:
        vectors = rows.vectors.load()
        cv = cross_validate(vectors, labels, names, config.train, config.labels.folds, config.project.seed)
    else:
        cv = combine_folds(labels, names, rows.folds, folds)
    manifest = read_manifest(manifest_path(config.project.data_dir))[["path", "asin", "image_id"]]
    photos = rows.photos.merge(manifest, on="path", how="left")
    issues = rank_label_issues(photos, labels, cv.probabilities["head"], names)
    csv = issues.to_csv(index=False)
    atomic_write_text(issues_path(config.project.data_dir), csv)
    data_dir = Path(config.project.data_dir)
    gallery = photo_grid_png(
        [data_dir / p for p in issues["path"]],
        [
            f"listed {g}\nlooks {s} ({q:.2f})"
            for g, s, q in zip(issues["given_class"], issues["suggested_class"], issues["score"], strict=True)
        ],
        config.labels.gallery_size,
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({**cv.summary(), "label_issues": len(issues)})
        mlflow.log_text(csv, ISSUES_NAME)
        mlflow.log_text(cv.table(), "crossval.md")
        if gallery is not None:
            from PIL import Image

            mlflow.log_image(Image.open(io.BytesIO(gallery)), "label_issues.png")
    log.info("label issues: %d of %d training photos flagged (%s)", len(issues), len(labels), ISSUES_NAME)
    return {"issues": len(issues), "worst": issues.head(5).to_dict("records"), "crossval": cv.summary()}
