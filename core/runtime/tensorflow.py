"""The reference runtime: a Keras model under one traced ``tf.function`` (no per-call ``predict``)."""

from __future__ import annotations

import keras
import numpy as np


class TensorFlowRuntime:
    """FP32 in TensorFlow; what every faster runtime is checked against."""

    def __init__(self, model: keras.Model) -> None:
        import tensorflow as tf

        self.name = "tensorflow-f32"
        self._tf = tf
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._fn(self._tf.constant(batch, dtype=self._tf.float32)).numpy()
