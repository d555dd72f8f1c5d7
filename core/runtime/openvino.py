"""OpenVINO: convert a Keras model, keep the converted model on disk, and run it compiled for the CPU.

Measured for ResNet50 at 224 px on 2 cores (AMD EPYC, AVX512-BF16 and VNNI, no AMX): TensorFlow FP32
~37 img/s; OpenVINO bf16 ~99 img/s (12 ms for one image); int8 ~165 img/s (``core.runtime.int8``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import keras
import numpy as np

from core.runtime.spec import Runtime


def convert_to_openvino(model: keras.Model):
    """The Keras model as an OpenVINO model (converting the traced function: ~4 s for ResNet50, a SavedModel
    export first would take ~12 s)."""
    import openvino as ov
    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    # no autograph: nothing to convert, and it would leave a generated .py file in the temp folder
    return ov.convert_model(tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False))


def save_ir(converted, xml: Path) -> None:
    """Write an OpenVINO model (``.xml`` + ``.bin``) so that a reader sees both files complete or none.

    Weights stay FP32 (no fp16 compression), so a model read back equals a fresh conversion.
    """
    import openvino as ov

    xml.parent.mkdir(parents=True, exist_ok=True)
    tmp = xml.with_name(f".tmp-{xml.name}")
    ov.save_model(converted, tmp, compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    tmp.replace(xml)  # the .xml last: its presence means both files are complete


def read_or_convert(model: keras.Model, xml: Path | None):
    """The converted model, read from ``xml`` if an earlier run saved it (~0.3 s instead of ~4 s)."""
    import openvino as ov

    if xml is not None and xml.exists():
        return ov.Core().read_model(xml)
    converted = convert_to_openvino(model)
    if xml is not None:
        save_ir(converted, xml)
    return converted


class OpenVINORuntime:
    """An OpenVINO model compiled for the CPU. One infer request per thread, so callers never share one."""

    def __init__(self, converted, precision: str, name: str | None = None) -> None:
        import openvino as ov

        self._compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": precision})
        self._local = threading.local()
        self.name = name or f"openvino-{precision}"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(result[0], copy=True)


class Chained:
    """Two runtimes in sequence (e.g. the int8 embedder, then the head)."""

    def __init__(self, first: Runtime, second: Runtime) -> None:
        self.first, self.second = first, second
        self.name = first.name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.second(self.first(batch))

    def with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the first runtime's output, e.g. the pooled features; the second's, e.g. the probabilities)."""
        features = self.first(batch)
        return features, self.second(features)
