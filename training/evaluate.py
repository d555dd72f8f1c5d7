"""Evaluation on the held-out test split: accuracy, per-class precision/recall/F1, confusion matrix.

Pure functions (scikit-learn's definitions); plots are returned as PNG bytes for the tracker to log.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Flat metric dict: ``test_accuracy``, ``test_<class>_precision|recall|f1``, macro/weighted averages."""
    labels = list(range(len(class_names)))
    out = {"test_accuracy": float(accuracy_score(y_true, y_pred))}
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(class_names):
        out[f"test_{name}_precision"], out[f"test_{name}_recall"], out[f"test_{name}_f1"] = (
            float(p[i]),
            float(r[i]),
            float(f[i]),
        )
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out[f"test_{avg}_precision"], out[f"test_{avg}_recall"], out[f"test_{avg}_f1"] = float(p), float(r), float(f)
    return out


def confusion_matrix_png(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> bytes:
    """The confusion matrix (rows: true class, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
