"""One candidate model: the head fitted on cached features, optionally fine-tuned, scored on the test split.

Config keys: everything under ``train`` (``train.finetune`` included), ``project.seed``, ``project.data_dir``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from configs.schema import Config
from core.model import build_classifier
from core.model_input import load_images
from training.evaluate import classification_metrics, roc_auc
from training.features import PARTS, Features
from training.finetune import fine_tune
from training.fit import fit_head


@dataclass(frozen=True)
class Candidate:
    """One trained head (and possibly fine-tuned network) with its test results."""

    head: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    probs: np.ndarray  # test-split class probabilities
    metrics: dict[str, float]  # test metrics
    fit_seconds: float
    classifier: keras.Model | None = None  # the whole network, when fine-tuning changed the base
    finetune_history: dict[str, list[float]] | None = None

    @property
    def val_loss(self) -> float:
        """The best validation loss of the head's training."""
        return min(self.history["val_loss"])


def checkpoint_folder(config: Config, features: Features) -> Path:
    """Where the head's resumable state lives, keyed by everything that determines the training: a restarted
    run finds the state its interrupted predecessor left, and no other run does."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                features.base.embedding_key,
                config.train.model_dump(mode="json"),
                config.project.seed,
                hashlib.sha256(features.split.to_csv(index=False).encode()).hexdigest(),
            ]
        ).encode()
    ).hexdigest()[:16]
    return Path(config.project.data_dir) / "checkpoints" / fingerprint


def train_candidate(config: Config, features: Features) -> Candidate:
    """Fit the head on cached features (resumable), fine-tune if configured, and score the test split."""
    tc = config.train
    started = time.monotonic()
    head, history, best_epoch = fit_head(
        train=features.part("train"),
        val=features.part("val"),
        num_classes=len(config.class_names),
        config=tc,
        checkpoint_dir=checkpoint_folder(config, features),
        seed=config.project.seed,
    )
    fit_seconds = time.monotonic() - started
    test_x, test_y = features.part("test")
    probs, classifier, finetune_history = head.predict(test_x, verbose=0), None, None
    if tc.finetune.enabled and features.base.weights.keras_arg is not None:
        classifier = build_classifier(features.base.embedder, head)
        images = {name: load_images(features.part_paths(name), tc.image_size) for name in PARTS}
        finetune_history = fine_tune(
            classifier=classifier,
            base=features.base.base,
            train=(images["train"], features.part("train")[1]),
            val=(images["val"], features.part("val")[1]),
            num_classes=len(config.class_names),
            config=tc.finetune,
            seed=config.project.seed,
            trainable=features.base.backbone.finetune_layers(features.base.base, tc.finetune.unfreeze_layers),
        )
        probs = classifier.predict(images["test"], verbose=0)  # the base changed: use the whole graph
    return Candidate(
        head=head,
        history=history,
        best_epoch=best_epoch,
        probs=probs,
        metrics={
            **classification_metrics(test_y, probs.argmax(axis=1), config.class_names),
            **roc_auc(test_y, probs, config.class_names),
        },
        fit_seconds=fit_seconds,
        classifier=classifier,
        finetune_history=finetune_history,
    )
