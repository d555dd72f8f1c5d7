"""What the blueprints share: the config, the served models (each with its inference queue), history, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from configs.schema import Config
from serving.history import History
from serving.metrics import ServerMetrics
from serving.models import ModelRoutes
from serving.reloader import ModelHolder

EXTENSION = "stj"


@dataclass(frozen=True)
class Served:
    """One app's serving state (``app.extensions["stj"]``)."""

    config: Config
    models: ModelRoutes
    history: History
    metrics: ServerMetrics

    @property
    def holder(self) -> ModelHolder:
        """The holder of STJ's classifier, the default model."""
        return self.models.default


def served() -> Served:
    """The serving state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
