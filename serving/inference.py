"""The one inference service behind ``/predict``, ``/predict/batch`` and ``/explain``.

All three wait in the same bounded queue (``serve.queue_size``): predictions are micro-batched, Grad-CAM
explanations run one at a time beside them. Each answer comes with the predictor that computed it, so the
response can name the model that really answered, even across a hot reload.

Config keys: ``serve.max_batch``, ``serve.max_wait_ms``, ``serve.queue_size``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from configs.schema import ServeConfig
from serving.batcher import Admission, MicroBatcher, SerialLane
from serving.explain import grad_cam


class InferenceService:
    """Predictions and explanations on the current model, behind one admission limit."""

    def __init__(self, current: Callable[[], Any], serve: ServeConfig, on_batch: Callable[[int], None]) -> None:
        admission = Admission(serve.queue_size)
        self._batcher = MicroBatcher(
            current, serve.max_batch, serve.max_wait_ms, on_batch=on_batch, admission=admission
        )
        self._serial = SerialLane(current, admission)

    def close(self) -> None:
        """Stop the workers once the queued work is done."""
        self._batcher.close()
        self._serial.close()

    def predict(self, pixels: np.ndarray) -> tuple[np.ndarray, Any]:
        """Class probabilities of one model-input image, and the predictor that computed them."""
        return self._batcher.submit(pixels)

    def predict_many(self, pixels: list[np.ndarray]) -> tuple[np.ndarray, Any]:
        """Class probabilities of several images, all computed by one predictor (returned too)."""
        return self._batcher.submit_many(np.stack(pixels))

    def explain(self, pixels: np.ndarray) -> tuple[tuple[np.ndarray, int], Any]:
        """Grad-CAM heatmap and the class it explains (the predicted one), and the predictor used."""
        return self._serial.run(lambda predictor: grad_cam(predictor.model, pixels))
