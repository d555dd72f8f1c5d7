"""What the blueprints share: the config, the served models (each with its inference queue), history, accounts,
metrics, the challenger's shadow."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from flask import current_app

from configs.schema import Config
from serving.accounts import Accounts
from serving.browser_model import BrowserModels
from serving.history import History
from serving.metrics import ServerMetrics
from serving.models import ModelRoutes
from serving.prediction_log import PredictionLog
from serving.predictor import Predictor
from serving.reloader import ModelHolder
from serving.shadow import Shadow
from serving.uploads import decode_upload

EXTENSION = "stj"


@dataclass(frozen=True)
class Served:
    """One app's serving state (``app.extensions["stj"]``)."""

    config: Config
    models: ModelRoutes
    history: History
    accounts: Accounts | None  # None: serve.auth is none
    metrics: ServerMetrics
    decodes: threading.BoundedSemaphore  # serve.decode_concurrency places
    browser: BrowserModels | None = None  # None: serve.browser_model is off
    shadow: Shadow | None = None  # None: serve.shadow_share is 0 (or the models were handed in, as tests do)
    log: PredictionLog | None = None  # None: monitor.log_predictions is off

    def decode(self, data: bytes, model: Predictor, name: str = "the upload") -> np.ndarray:
        """Uploaded bytes as ``model``'s input; at most ``serve.decode_concurrency`` decodes at once."""
        with self.decodes:
            return decode_upload(data, model.image_size, self.config.serve.min_side, name=name, resize=model.resize)

    @property
    def holder(self) -> ModelHolder:
        """The holder of STJ's classifier, the default model."""
        return self.models.default


def served() -> Served:
    """The serving state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
