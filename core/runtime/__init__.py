"""Inference runtimes for a Keras model: TensorFlow (the reference) and OpenVINO (fast on this CPU).

``runtime: auto`` picks OpenVINO when it is installed, else TensorFlow. Which OpenVINO precision runs
(f32, bf16, int8) is decided by training, by measuring speed and validation accuracy on the machine at
hand (``training.embedding.precision``); the server runs the embedder training logged. Training's embedding and
serving use the same runtimes, so both see the same numbers.

Config keys: ``train.runtime``, ``train.precision``, ``serve.runtime``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# OpenVINO's converter and NNCF send usage telemetry (Google Analytics, from a process they fork off a
# thread) unless an opt-in file in the user's home says no. STJ never phones home, and a fork of a threaded
# process can hang: with ``openvino_telemetry`` unimportable both fall back to their own no-op stubs. Here,
# because every path from STJ to OpenVINO or NNCF imports this package first.
if "openvino_telemetry" not in sys.modules:
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]

import keras  # noqa: E402

from core.runtime.cpu import openvino_available  # noqa: E402
from core.runtime.openvino import Chained, OpenVINORuntime, convert_to_openvino, read_or_convert  # noqa: E402
from core.runtime.spec import Backend, Runtime, RuntimeSpec  # noqa: E402
from core.runtime.tensorflow import TensorFlowRuntime

log = logging.getLogger(__name__)

__all__ = [
    "Chained",
    "OpenVINORuntime",
    "Runtime",
    "RuntimeSpec",
    "TensorFlowRuntime",
    "convert_to_openvino",
    "make_runtime",
    "resolve_backend",
]


def resolve_backend(backend: str) -> Backend:
    """The engine a ``runtime`` setting (``auto``, ``openvino``, ``tensorflow``) gives on this machine.

    Raises:
        RuntimeError: ``openvino`` was asked for and is not installed.
    """
    if backend == "tensorflow" or (backend == "auto" and not openvino_available()):
        return "tensorflow"
    if not openvino_available():
        raise RuntimeError("runtime 'openvino' requested but the openvino package is not installed")
    return "openvino"


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
