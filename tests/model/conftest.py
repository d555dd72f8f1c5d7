"""The trained model whose behaviour is tested, and photos it never saw.

By default: EfficientNet-Lite0 (ImageNet) at 224 px with a head fitted, by the real ``training.fitting.fit``, on photos
drawn by the catalog, once per session; the photos are fresh drawings with their garment boxes (where Grad-CAM
should look). To check a model a pipeline produced instead (as Made-With-ML's ``--run-id``), name it: a run id
or a model URI, with the config whose store and data folder hold it:

    STJ_MODEL=models:/stj-classifier@champion STJ_CONFIG=configs/demo.yaml .venv/bin/pytest tests/model

Its photos are then its run's own test split; the checks that need garment boxes are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

from catalog.draw import draw_product_with_box
from catalog.settings import DRAWN_CLASSES
from configs.schema import TrainConfig
from core.model import build_classifier, build_frozen, get_backbone
from core.model_input import to_model_input
from training.fitting.fit import fit_head

SIZE = 224


@dataclass(frozen=True)
class Trained:
    """A classifier (raw pixels -> probabilities) and photos it was not trained on."""

    classifier: keras.Model
    pixels: np.ndarray
    labels: np.ndarray
    boxes: list[tuple[int, int, int, int]] | None  # where each photo's garment is, in model-input pixels

    def garment_boxes(self) -> list[tuple[int, int, int, int]]:
        """The boxes; a model given by ``STJ_MODEL`` is tested on photos without them: the check is skipped."""
        if self.boxes is None:
            pytest.skip("garment boxes are known only for drawn photos (the default model's test set)")
        return self.boxes

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


def _produced(model: str) -> Trained:
    """The model ``model`` (a run id or a model URI) and its run's test photos."""
    import mlflow

    from core.logged_model import load_logged_model
    from core.model_input import load_images
    from flows.settings import load_run_config
    from training.evaluation.rescore import test_rows_of_run

    config = load_run_config(os.environ.get("STJ_CONFIG", "configs/demo.yaml"))
    mlflow.set_tracking_uri(config.tracking.uri)
    if ":/" not in model:  # a run id: the model that run logged
        (logged_model,) = mlflow.search_logged_models(filter_string=f"source_run_id = '{model}'", output_format="list")
        model = logged_model.model_uri
    logged = load_logged_model(model, with_embedder=False)
    rows = test_rows_of_run(logged.run_id)
    paths = [Path(config.project.data_dir) / path for path in rows["path"]]
    pixels = load_images(paths, logged.image_size, resize=logged.resize)
    labels = rows["class"].map(logged.class_names.index).to_numpy()
    return Trained(logged.model, pixels, labels, None)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    if model := os.environ.get("STJ_MODEL"):
        return _produced(model)
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
