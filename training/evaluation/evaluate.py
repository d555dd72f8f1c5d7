"""Evaluation on the held-out test split: accuracy, per-class and averaged precision/recall/F1, confusion
matrix, one-vs-rest ROC curves with AUC, and a gallery of misclassified photos.

Pure functions (scikit-learn's definitions); plots are returned as PNG bytes for the tracker to log.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score, roc_curve


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def roc_auc(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """One-vs-rest ROC AUC per class (``test_<class>_auc``) and their macro average (``test_macro_auc``)."""
    out: dict[str, float] = {}
    for i, name in enumerate(class_names):
        positives = y_true == i
        if positives.all() or not positives.any():
            continue  # AUC is undefined without both positives and negatives
        out[f"test_{name}_auc"] = float(roc_auc_score(positives, probs[:, i]))
    if out:
        out["test_macro_auc"] = float(np.mean(list(out.values())))
    return out


def roc_curves_png(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> bytes:
    """One-vs-rest ROC curves, one line per class, AUC in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    aucs = roc_auc(y_true, probs, class_names)
    for i, name in enumerate(class_names):
        if f"test_{name}_auc" not in aucs:
            continue
        fpr, tpr, _ = roc_curve(y_true == i, probs[:, i])
        ax.plot(fpr, tpr, label=f"{name} (AUC {aucs[f'test_{name}_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, one vs rest (test split)")
    ax.legend(loc="lower right")
    return _png(fig)


def photo_grid_png(paths: Sequence[str | Path], captions: Sequence[str], limit: int = 16) -> bytes | None:
    """Photos in a grid of up to four columns, each with its caption (``None`` for no photos)."""
    from PIL import Image

    shown = list(zip(paths, captions, strict=True))[:limit]
    if not shown:
        return None
    plt = _pyplot()
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (path, caption) in zip(axes.flat, shown, strict=False):
        with Image.open(path) as img:
            ax.imshow(img.convert("RGB"))
        ax.set_title(caption, fontsize=9)
    return _png(fig)


def misclassified_png(
    paths: Sequence[str | Path], y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], limit: int = 16
) -> bytes | None:
    """A grid of the most confidently misclassified test photos with true and predicted labels."""
    wrong = np.nonzero(probs.argmax(axis=1) != y_true)[0]
    wrong = wrong[np.argsort(-probs[wrong].max(axis=1))][:limit]
    captions = [
        f"true {class_names[y_true[i]]}\npred {class_names[int(probs[i].argmax())]} {probs[i].max():.2f}" for i in wrong
    ]
    return photo_grid_png([paths[i] for i in wrong], captions, limit)


def confusion_matrix_png(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> bytes:
    """The confusion matrix (rows: true class, columns: predicted) as a PNG."""
    plt = _pyplot()
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
    return _png(fig)
