"""Train the classification head on cached features: RMSprop, early stopping, best-only checkpoints.

Config keys: ``train.epochs``, ``train.batch_size``, ``train.learning_rate``, ``train.patience``,
``train.dense_units``, ``train.dropout``, ``project.seed``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from configs.schema import TrainConfig
from training.model import build_head


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency class weights, so an under-represented class still counts."""
    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    out = {c: 1.0 for c in range(num_classes)}
    out.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return out


def fit_head(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    config: TrainConfig,
    checkpoint_dir: Path,
    seed: int,
    callbacks: list[keras.callbacks.Callback] = (),
) -> tuple[keras.Model, dict[str, list[float]], int]:
    """Fit the head; the returned model holds the weights of the best validation epoch.

    Args:
        train: (features, integer labels) for training.
        val: (features, integer labels) for early stopping.
        num_classes: number of output classes.
        config: training hyper-parameters.
        checkpoint_dir: where the best checkpoint is kept.
        seed: fixes initialisation, dropout and shuffling.
        callbacks: extra callbacks (e.g. per-epoch metric logging).

    Returns:
        (head, history, best epoch number counted from 1).
    """
    keras.utils.set_random_seed(seed)
    head = build_head(num_classes, config.dense_units, config.dropout, train[0])
    head.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    best_path = checkpoint_dir / "best.weights.h5"
    history = head.fit(
        train[0],
        train[1],
        validation_data=val,
        epochs=config.epochs,
        batch_size=config.batch_size,
        class_weight=balanced_class_weights(train[1], num_classes),
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
            keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True, save_weights_only=True),
            *callbacks,
        ],
    )
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best_epoch = int(np.argmin(hist["val_loss"])) + 1
    return head, hist, best_epoch
