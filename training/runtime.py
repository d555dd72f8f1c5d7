"""Inference runtimes for a Keras model: TensorFlow (the reference) and OpenVINO (fast on this CPU).

``auto`` picks OpenVINO in bf16 where the CPU has bf16 units (AMX/AVX-512 BF16), OpenVINO FP32 where it
does not, and TensorFlow when OpenVINO is not installed. Measured for ResNet50 at 224 px on 2 cores:
TensorFlow FP32 ~37 img/s; OpenVINO bf16 ~95 img/s on AVX512-BF16 without AMX (AMD EPYC), ~230 with AMX. Training's embedding and serving use the same
runtimes, so both see the same numbers.

Config keys: ``train.runtime``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

import keras
import numpy as np

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """Maps a float32 batch to the model's output."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TensorFlowRuntime:
    """The reference path: the Keras model under one traced ``tf.function`` (no per-call ``predict``)."""

    def __init__(self, model: keras.Model) -> None:
        import tensorflow as tf

        self.name = "tensorflow-fp32"
        self._tf = tf
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._fn(self._tf.constant(batch, dtype=self._tf.float32)).numpy()


def openvino_available() -> bool:
    """Whether the OpenVINO runtime can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_supports_bf16() -> bool:
    """Whether OpenVINO reports bf16 support on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def convert_to_openvino(model: keras.Model):
    """The Keras model as an OpenVINO model (converting the traced function: ~4 s for ResNet50, a SavedModel
    export first would take ~12 s)."""
    import openvino as ov
    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    return ov.convert_model(tf.function(lambda x: model(x, training=False), input_signature=[spec]))


class OpenVINORuntime:
    """The Keras model exported as a SavedModel, converted by OpenVINO and compiled for the CPU.

    One infer request per thread, so concurrent callers never share one.
    """

    def __init__(self, model: keras.Model, precision: str = "bf16", cache_file: Path | None = None) -> None:
        import openvino as ov

        if cache_file is not None and cache_file.exists():
            converted = ov.Core().read_model(cache_file)  # ~0.3 s instead of converting again
        else:
            converted = convert_to_openvino(model)
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_name(f".tmp-{cache_file.name}")
                ov.save_model(converted, tmp)
                tmp.with_suffix(".bin").replace(cache_file.with_suffix(".bin"))
                tmp.replace(cache_file)  # the .xml last: its presence means both files are complete
        self._compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": precision})
        self._local = threading.local()
        self.name = f"openvino-{precision}"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(result[0], copy=True)


def make_runtime(model: keras.Model, choice: str = "auto", cache_file: Path | None = None) -> Runtime:
    """Build the runtime named by ``choice`` (``auto``, ``openvino``, ``tensorflow``) and log which one.

    ``cache_file`` (an ``.xml`` path) keeps OpenVINO's converted model for the next start; key it by the
    model's exact weights.
    """
    if choice == "tensorflow" or (choice == "auto" and not openvino_available()):
        runtime: Runtime = TensorFlowRuntime(model)
    elif choice == "openvino" and not openvino_available():
        raise RuntimeError("runtime 'openvino' requested but the openvino package is not installed")
    else:
        runtime = OpenVINORuntime(model, "bf16" if cpu_supports_bf16() else "f32", cache_file)
    log.info("inference runtime: %s", runtime.name)
    return runtime
