"""Load a registered model once and predict class probabilities for decoded images.

Config keys: ``serve.model_uri`` (default ``models:/<tracking.model_name>@<tracking.alias>``),
``serve.runtime``, ``tracking.uri``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import training.model  # noqa: F401 - registers the custom layer the saved model contains
from training.runtime import (
    Chained,
    OpenVINORuntime,
    Runtime,
    convert_to_openvino,
    make_runtime,
    resolve_precision,
)
from training.track import OPENVINO_ARTIFACT

log = logging.getLogger(__name__)

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class ModelRef:
    """Which model version a URI points at right now."""

    name: str
    version: str | None
    uri: str


def alias_version(model_uri: str, tracking_uri: str) -> str | None:
    """The version an alias URI points at now; ``None`` for URIs that are not an alias."""
    match = _ALIAS_URI.match(model_uri)
    if match is None:
        return None
    mlflow.set_tracking_uri(tracking_uri)
    return str(MlflowClient().get_model_version_by_alias(match["name"], match["alias"]).version)


def resolve_model(model_uri: str, tracking_uri: str) -> ModelRef:
    """Pin an alias URI to the version it points at now, so the loaded model and the reported version agree."""
    mlflow.set_tracking_uri(tracking_uri)
    if (version := alias_version(model_uri, tracking_uri)) is not None:
        name = _ALIAS_URI.match(model_uri)["name"]
        return ModelRef(name, version, f"models:/{name}/{version}")
    if match := _VERSION_URI.match(model_uri):
        return ModelRef(match["name"], match["version"], model_uri)
    return ModelRef(model_uri, None, model_uri)


def build_runtime(model, choice: str, openvino_dir: Path | None) -> Runtime:
    """The serving runtime: the embedder training logged (``openvino/``: int8 or bf16, the very features the
    evaluation saw) followed by the head, or else the whole model converted here."""
    described = openvino_dir / "runtime.json" if openvino_dir is not None else None
    shipped = described is not None and described.exists()
    name = resolve_precision(choice, "auto", int8_ok=shipped)  # int8 only with training's calibration
    if name == "tensorflow-fp32" or not shipped:
        return make_runtime(model, name)
    import openvino as ov

    record = json.loads(described.read_text())
    embedder = OpenVINORuntime(ov.Core().read_model(openvino_dir / record["xml"]), record["hint"], record["runtime"])
    head = OpenVINORuntime(convert_to_openvino(model.get_layer("head")), "f32")
    log.info("inference runtime: %s (embedder from training) + head", embedder.name)
    return Chained(embedder, head)


class Predictor:
    """A loaded, warmed-up model: pixels in, probabilities out."""

    def __init__(
        self,
        model,
        class_names: list[str],
        image_size: int,
        ref: ModelRef,
        runtime: str = "auto",
        openvino_dir: Path | None = None,
    ) -> None:
        self.ref, self.class_names, self.image_size = ref, list(class_names), int(image_size)
        self.model = model  # the Keras model, for gradients (Grad-CAM)
        self.runtime = build_runtime(model, runtime, openvino_dir)
        self.predict(np.zeros((1, self.image_size, self.image_size, 3), np.float32))  # warm-up
        log.info("loaded %s version %s (%s)", ref.name, ref.version, self.runtime.name)

    @classmethod
    def load(cls, model_uri: str, tracking_uri: str, runtime: str = "auto") -> Predictor:
        """Load a registered (or any MLflow) model; an alias is pinned to its current version first."""
        ref = resolve_model(model_uri, tracking_uri)
        info = mlflow.models.get_model_info(ref.uri)
        model = mlflow.tensorflow.load_model(ref.uri)
        openvino_dir = None
        if runtime != "tensorflow" and info.run_id:
            try:
                openvino_dir = Path(
                    mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=OPENVINO_ARTIFACT)
                )
            except (MlflowException, OSError):
                log.info("version %s has no OpenVINO embedder: converting the whole model", ref.version)
        return cls(model, info.metadata["class_names"], info.metadata["image_size"], ref, runtime, openvino_dir)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of model-input images."""
        return self.runtime(pixels)

    def top_k(self, probs: np.ndarray, k: int) -> list[dict[str, float | str]]:
        """The ``k`` most likely classes of one image, most likely first."""
        order = np.argsort(-probs)[:k]
        return [{"label": self.class_names[i], "probability": round(float(probs[i]), 6)} for i in order]
