"""The one inference service behind ``/predict``, ``/predict/batch`` and ``/explain``.

All three wait in the same bounded queue (``serve.queue_size``): predictions are micro-batched, Grad-CAM
explanations run one at a time beside them. A request resolves its model once (``Route.current()``),
decodes its photo for that model and hands the same predictor here; the answer comes back with it, so the
response names the model that really answered, even across a hot reload, and a batch never mixes versions.

Config keys: ``serve.max_batch``, ``serve.max_wait_ms``, ``serve.queue_size``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from configs.schema import ServeConfig
from serving.batcher import Admission, MicroBatcher, SerialLane
from serving.explain import grad_cam

if TYPE_CHECKING:
    from serving.predictor import Assessed, Predictor


class InferenceService:
    """Predictions and explanations, behind one admission limit."""

    def __init__(self, serve: ServeConfig, on_batch: Callable[[int], None]) -> None:
        admission = Admission(serve.queue_size)
        self._batcher = MicroBatcher(serve.max_batch, serve.max_wait_ms, on_batch=on_batch, admission=admission)
        self._serial = SerialLane(admission)

    @property
    def idle(self) -> bool:
        """Whether nothing is waiting or running here (the challenger in shadow runs only then)."""
        return self._batcher.idle and self._serial.idle

    def close(self) -> None:
        """Stop the workers once the queued work is done."""
        self._batcher.close()
        self._serial.close()

    def predict(self, pixels: np.ndarray, predictor: Predictor) -> tuple[Assessed, Predictor]:
        """One image (decoded for ``predictor``) assessed: its class probabilities and "none of these" score
        (row 0), and the predictor that computed them."""
        return self._batcher.submit(pixels, predictor)

    def predict_many(self, pixels: list[np.ndarray], predictor: Predictor) -> tuple[Assessed, Predictor]:
        """Several images assessed, all by ``predictor`` (returned too)."""
        return self._batcher.submit_many(np.stack(pixels), predictor)

    def explain(self, pixels: np.ndarray, predictor: Predictor) -> tuple[tuple[np.ndarray, int], Predictor]:
        """Grad-CAM heatmap and the class it explains (the predicted one), and the predictor used."""
        return self._serial.run(lambda model: grad_cam(model.model, pixels), predictor)
