"""Inference runtimes for a Keras model: TensorFlow (the reference) and OpenVINO (fast on this CPU).

``runtime: auto`` picks OpenVINO when it is installed, else TensorFlow. OpenVINO's ``precision: auto``
picks int8 where the CPU has int8 dot-product units (VNNI/AMX) and a calibrated int8 model is at hand,
else bf16 where the CPU has bf16 units, else f32. Training's embedding and serving use the same
runtimes, so both see the same numbers.

Config keys: ``train.runtime``, ``train.precision``, ``serve.runtime``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from core.runtime.cpu import compile_hint, cpu_has_int8_dot, openvino_available
from core.runtime.openvino import Chained, OpenVINORuntime, convert_to_openvino, read_or_convert
from core.runtime.spec import Runtime, RuntimeSpec
from core.runtime.tensorflow import TensorFlowRuntime

log = logging.getLogger(__name__)

__all__ = [
    "Chained",
    "OpenVINORuntime",
    "Runtime",
    "RuntimeSpec",
    "TensorFlowRuntime",
    "convert_to_openvino",
    "float_fallback",
    "make_runtime",
    "resolve_runtime",
]


def resolve_runtime(backend: str, precision: str, *, int8_ok: bool = True) -> RuntimeSpec:
    """The runtime a (``backend``, ``precision``) choice gives on this machine.

    ``int8_ok=False`` when no calibrated int8 model can be had (not shipped with a model): then an
    ``int8`` or ``auto`` precision means the best float precision.

    Raises:
        RuntimeError: ``openvino`` was asked for and is not installed.
    """
    if backend == "tensorflow" or (backend == "auto" and not openvino_available()):
        return RuntimeSpec("tensorflow", "f32")
    if not openvino_available():
        raise RuntimeError("runtime 'openvino' requested but the openvino package is not installed")
    if precision == "auto" or (precision == "int8" and not int8_ok):
        precision = "int8" if int8_ok and cpu_has_int8_dot() else compile_hint()
    return RuntimeSpec("openvino", precision)  # type: ignore[arg-type]


def float_fallback(spec: RuntimeSpec) -> RuntimeSpec:
    """What runs instead of ``spec`` when its int8 model was refused: the best float precision."""
    return RuntimeSpec(spec.backend, compile_hint()) if spec.is_int8 else spec  # type: ignore[arg-type]


def make_runtime(model: keras.Model, spec: RuntimeSpec, cache_file: Path | None = None) -> Runtime:
    """Build a float runtime (int8 needs calibration: ``core.runtime.int8.int8_runtime``).

    ``cache_file`` (an ``.xml`` path) keeps OpenVINO's converted model for the next start; key it by the
    model's exact weights.
    """
    if spec.is_int8:
        raise ValueError("int8 needs calibration: use core.runtime.int8.int8_runtime")
    if spec.backend == "tensorflow":
        runtime: Runtime = TensorFlowRuntime(model)
    else:
        runtime = OpenVINORuntime(read_or_convert(model, cache_file), spec.precision)
    log.info("inference runtime: %s", runtime.name)
    return runtime
