"""A trained model to test the behaviour of: EfficientNet-Lite0 (ImageNet) with a head fitted, by the real
``training.fit``, on photos drawn by the catalog; and fresh drawings it never saw, with their garment boxes."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pytest

from catalog.draw import draw_product_with_box
from catalog.settings import DRAWN_CLASSES
from configs.schema import TrainConfig
from core.model import build_classifier, build_frozen, get_backbone
from core.model_input import to_model_input
from training.fit import fit_head

SIZE = 224


@dataclass(frozen=True)
class Trained:
    """A classifier (raw pixels -> probabilities) and photos it was not trained on."""

    classifier: keras.Model
    pixels: np.ndarray
    labels: np.ndarray
    boxes: list[tuple[int, int, int, int]]  # where each photo's garment is, in model-input pixels

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities."""
        return self.classifier.predict(pixels, verbose=0)


def _drawings(seeds: range) -> tuple[np.ndarray, np.ndarray, list]:
    pixels, labels, boxes = [], [], []
    for label_index, label in enumerate(DRAWN_CLASSES):
        for seed in seeds:
            img, box = draw_product_with_box(label, seed, 320)
            pixels.append(to_model_input(img, SIZE))
            labels.append(label_index)
            boxes.append(tuple(round(v * SIZE / 320) for v in box))
    return np.stack(pixels), np.array(labels), boxes


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    backbone = get_backbone("efficientnet_lite0")
    _, embedder = build_frozen(backbone, SIZE, backbone.resolve_weights("imagenet", "error"))
    train_x, train_y, _ = _drawings(range(0, 40))
    val_x, val_y, _ = _drawings(range(40, 50))
    features = embedder.predict(np.concatenate([train_x, val_x]), verbose=0, batch_size=32)
    head, _, _ = fit_head(
        train=(features[: len(train_x)], train_y),
        val=(features[len(train_x) :], val_y),
        num_classes=len(DRAWN_CLASSES),
        config=TrainConfig(epochs=40, patience=8, learning_rate=3e-4),
        checkpoint_dir=tmp_path_factory.mktemp("head"),
        seed=0,
    )
    test_x, test_y, boxes = _drawings(range(1000, 1020))
    return Trained(build_classifier(embedder, head), test_x, test_y, boxes)
