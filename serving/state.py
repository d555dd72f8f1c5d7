"""What the blueprints share: the config, the served models (each with its inference queue), history, accounts,
metrics, the challenger's shadow, the prediction log and the last monitor report."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from configs.schema import Config
from core.images import ImageRejected, clean_image
from serving.accounts import Accounts
from serving.browser_model import BrowserModels
from serving.feedback import Feedback
from serving.history import History
from serving.metrics import ServerMetrics
from serving.models import ModelRoutes
from serving.monitor import latest_report
from serving.prediction_log import PredictionLog
from serving.predictor import Predictor
from serving.reloader import ModelHolder
from serving.review import Review
from serving.shadow import Shadow
from serving.uploads import decode_upload, rejection

EXTENSION = "stj"
MONITOR_FRESH_S = 30.0
KEEP_MAX_PIXELS = 16_000_000  # a flagged photo is kept whole: ~48 MB decoded at most, one per decode slot


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
    feedback: Feedback | None = None  # None: no accounts (serve.auth: none), so nobody to take corrections from
    review: Review | None = None  # None: no accounts, so no admin to review
    _monitor: dict = field(default_factory=dict)  # the last monitor report read, and when (latest_monitor)

    def latest_monitor(self) -> dict | None:
        """The last `stj monitor` report's summary (:func:`serving.monitor.latest_report`), read from the
        database at most every ``MONITOR_FRESH_S``; None before the first, or while the database is away."""
        read_at, summary = self._monitor.get("read", (0.0, None))
        if time.monotonic() - read_at > MONITOR_FRESH_S:
            try:
                summary = latest_report(self.history.database)
            except SQLAlchemyError:
                summary = None
            self._monitor["read"] = (time.monotonic(), summary)
        return summary

    def decode(self, data: bytes, model: Predictor, name: str = "the upload") -> np.ndarray:
        """Uploaded bytes as ``model``'s input; at most ``serve.decode_concurrency`` decodes at once."""
        with self.decodes:
            return decode_upload(data, model.image_size, self.config.serve.min_side, name=name, resize=model.resize)

    def keep_photo(self, data: bytes) -> bytes:
        """A flagged photo as it is kept (``core.images.clean_image``: the scraper's JPEG, so the same picture has
        the same SHA-256), decoded whole but at most ``KEEP_MAX_PIXELS`` and ``serve.decode_concurrency`` at once.

        Raises:
            ApiError: 413 for a photo over the pixel (or byte) limit, 4xx for what is not a readable image.
        """
        serve = self.config.serve
        with self.decodes:
            try:
                return clean_image(data, serve.min_side, serve.max_upload_bytes, max_pixels=KEEP_MAX_PIXELS).jpeg
            except ImageRejected as exc:
                raise rejection(exc, "the photo") from None

    @property
    def holder(self) -> ModelHolder:
        """The holder of STJ's classifier, the default model."""
        return self.models.default


def served() -> Served:
    """The serving state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
