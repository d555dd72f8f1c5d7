"""Load a registered model once and predict class probabilities for decoded images.

Config keys: ``serve.model_uri`` (default ``models:/<tracking.model_name>@<tracking.alias>``),
``serve.runtime``, ``tracking.uri``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import mlflow
import numpy as np
from mlflow import MlflowClient

from core.logged_model import LoggedModel, build_runtime, load_logged_model

log = logging.getLogger(__name__)

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class Assessed:
    """A batch scored: class probabilities and, when the model has a "none of these" index, each photo's
    score, the model's threshold (above it: unlike the training photos) and the pooled features."""

    probs: np.ndarray
    ood_scores: np.ndarray | None = None
    threshold: float | None = None
    features: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> Assessed:
        """Photos ``start`` to ``stop`` of the batch."""

        def part(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[start:stop]

        return Assessed(self.probs[start:stop], part(self.ood_scores), self.threshold, part(self.features))

    def verdict(self, row: int) -> dict[str, bool | float]:
        """``in_distribution`` and ``ood_score`` of one photo, for an answer; empty without an index."""
        if self.ood_scores is None:
            return {}
        score = float(self.ood_scores[row])
        return {"in_distribution": bool(score <= self.threshold), "ood_score": round(score, 6)}


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
    client = MlflowClient(tracking_uri=tracking_uri)  # a client of its own: no global state per check
    return str(client.get_model_version_by_alias(match["name"], match["alias"]).version)


def resolve_model(model_uri: str, tracking_uri: str) -> ModelRef:
    """Pin an alias URI to the version it points at now, so the loaded model and the reported version agree."""
    if (version := alias_version(model_uri, tracking_uri)) is not None:
        name = _ALIAS_URI.match(model_uri)["name"]
        return ModelRef(name, version, f"models:/{name}/{version}")
    if match := _VERSION_URI.match(model_uri):
        return ModelRef(match["name"], match["version"], model_uri)
    return ModelRef(model_uri, None, model_uri)


class Predictor:
    """A loaded, warmed-up model: pixels in, probabilities out."""

    def __init__(self, logged: LoggedModel, ref: ModelRef, runtime: str = "auto") -> None:
        self.ref, self.class_names, self.image_size = ref, list(logged.class_names), int(logged.image_size)
        self.resize = logged.resize  # how a photo becomes this model's input
        self.model = logged.model  # the Keras model, for gradients (Grad-CAM)
        self.ood = logged.ood
        self.runtime = build_runtime(logged, runtime)
        self.predict(np.zeros((1, self.image_size, self.image_size, 3), np.float32))  # warm-up
        log.info("loaded %s version %s (%s)", ref.name, ref.version, self.runtime.name)

    @classmethod
    def load(cls, model_uri: str, tracking_uri: str, runtime: str = "auto") -> Predictor:
        """Load a registered (or any MLflow) model; an alias is pinned to its current version first."""
        ref = resolve_model(model_uri, tracking_uri)
        mlflow.set_tracking_uri(tracking_uri)  # MLflow resolves models:/ URIs against the global store
        return cls(load_logged_model(ref.uri, with_embedder=runtime != "tensorflow"), ref, runtime)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of model-input images (no "none of these" score: :meth:`assess`)."""
        return self.runtime(pixels)

    def assess(self, pixels: np.ndarray) -> Assessed:
        """Class probabilities for a batch of model-input images and, with a "none of these" index, how
        unlike the training photos each is (from the same pass's features)."""
        if self.ood is None:
            return Assessed(self.runtime(pixels))
        features, probs = self.runtime.with_features(pixels)
        return Assessed(probs, self.ood.scores(features), self.ood.threshold, features)

    def top_k(self, probs: np.ndarray, k: int) -> list[dict[str, float | str]]:
        """The ``k`` most likely classes of one image, most likely first; tied classes in class order, as
        ``argmax`` breaks ties (the default sort is not stable: on the ImageNet model's exact ties it named
        another class than ``argmax``)."""
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"label": self.class_names[i], "probability": round(float(probs[i]), 6)} for i in order]
