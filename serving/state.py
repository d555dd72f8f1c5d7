"""What the blueprints share: the config, the model holder, the inference service, history and metrics."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from configs.schema import Config
from serving.history import History
from serving.inference import InferenceService
from serving.metrics import ServerMetrics
from serving.reloader import ModelHolder

EXTENSION = "stj"


@dataclass(frozen=True)
class Served:
    """One app's serving state (``app.extensions["stj"]``)."""

    config: Config
    holder: ModelHolder
    inference: InferenceService
    history: History
    metrics: ServerMetrics


def served() -> Served:
    """The serving state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
