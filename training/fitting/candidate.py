"""One candidate model: the head fitted on cached features, its precision chosen (``training.embedding.precision``),
optionally fine-tuned, scored on the test split.

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
from core.runtime import RuntimeSpec
from training.embedding.features import PARTS, Features
from training.embedding.precision import PrecisionChoice, choose_precision
from training.evaluation.evaluate import classification_metrics, roc_auc
from training.fitting.finetune import fine_tune, image_dataset
from training.fitting.fit import EpochProgress, fit_head


@dataclass(frozen=True)
class Candidate:
    """One trained head (and possibly fine-tuned network) with its test results."""

    head: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    probs: np.ndarray  # test-split class probabilities
    metrics: dict[str, float]  # test metrics (in the chosen precision), and each checked precision's accuracy
    fit_seconds: float
    precision: PrecisionChoice
    classifier: keras.Model | None = None  # the whole network, when fine-tuning changed the base
    finetune_history: dict[str, list[float]] | None = None

    @property
    def runtime(self) -> RuntimeSpec:
        """What computed the test metrics: the chosen precision, or TensorFlow for a fine-tuned network."""
        return self.precision.chosen if self.classifier is None else RuntimeSpec("tensorflow", "f32")

    @property
    def val_loss(self) -> float:
        """The best validation loss of what is kept: the fine-tuned network's if fine-tuned, else the head's."""
        return min((self.finetune_history or self.history)["val_loss"])


def checkpoint_folder(config: Config, features: Features) -> Path:
    """Where the head's resumable state lives, keyed by everything that determines the training: a restarted
    run finds the state its interrupted predecessor left, and no other run does."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                features.base.embedding_key(),
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
        callbacks=[EpochProgress(tc.epochs, "head epochs")],
    )
    fit_seconds = time.monotonic() - started
    test_y = features.part("test")[1]
    precision = choose_precision(features, head, tc.precision_tolerance, fixed=tc.precision != "auto")
    probs, classifier, finetune_history = precision.test_probs, None, None
    extra = {f"test_accuracy_{p}": a for p, a in precision.test_accuracy.items()}  # on the compared sample
    extra[f"test_accuracy_{precision.chosen.precision}"] = _accuracy(test_y, probs)  # the whole split
    extra.update({f"val_accuracy_{p}": a for p, a in precision.val_accuracy.items()})
    extra.update({f"images_per_second_{p}": s for p, s in precision.speeds.items()})
    if tc.finetune.enabled and features.base.weights.keras_arg is not None:
        extra["test_accuracy_before_finetune"] = _accuracy(test_y, probs)
        embedder, base = own_copy(features.base.embedder, features.base.base.name)
        classifier = build_classifier(embedder, head)
        photos = {name: (features.part_paths(name), features.part(name)[1]) for name in PARTS}
        finetune_history = fine_tune(
            classifier=classifier,
            base=base,
            train=photos["train"],
            val=photos["val"],
            num_classes=len(config.class_names),
            config=tc.finetune,
            seed=config.project.seed,
            trainable=features.base.backbone.finetune_layers(base, tc.finetune.unfreeze_layers),
        )
        n_classes, batch = len(config.class_names), tc.finetune.batch_size
        test = image_dataset(*photos["test"], n_classes, tc.image_size, batch)
        # the base changed: the whole graph, a batch at a time
        probs = np.concatenate([classifier(x, training=False).numpy() for x, _ in test] or [np.zeros((0, n_classes))])
        extra["test_accuracy_after_finetune"] = _accuracy(test_y, probs)
    return Candidate(
        head=head,
        history=history,
        best_epoch=best_epoch,
        probs=probs,
        metrics={
            **classification_metrics(test_y, probs.argmax(axis=1), config.class_names),
            **roc_auc(test_y, probs, config.class_names),
            **extra,
        },
        fit_seconds=fit_seconds,
        precision=precision,
        classifier=classifier,
        finetune_history=finetune_history,
    )


def own_copy(embedder: keras.Model, base_name: str) -> tuple[keras.Model, keras.Model]:
    """A copy of the embedder (and its base) to fine-tune: the shared one keeps computing the cached features,
    and the next sweep point or sibling starts from the pretrained weights again."""
    copy = keras.models.clone_model(embedder)
    copy.set_weights(embedder.get_weights())
    return copy, copy.get_layer(base_name)


def _accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == labels).mean())
