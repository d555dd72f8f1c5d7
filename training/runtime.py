"""Inference runtimes for a Keras model: TensorFlow (the reference) and OpenVINO (fast on this CPU).

``runtime: auto`` picks OpenVINO when it is installed, else TensorFlow. OpenVINO's ``precision: auto``
picks int8 where the CPU has int8 dot-product units (VNNI/AMX) and a calibrated int8 model is at hand,
else bf16 where the CPU has bf16 units, else f32. Measured for ResNet50 at 224 px on 2 cores (AMD EPYC,
AVX512-BF16 and VNNI, no AMX): TensorFlow FP32 ~37 img/s; OpenVINO bf16 ~99 img/s (12 ms for one
image); OpenVINO int8 ~165 img/s (7 ms), cosine >= 0.999 to FP32. Training's embedding and serving use the
same runtimes, so both see the same numbers.

Config keys: ``train.runtime``, ``train.precision``, ``serve.runtime``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import keras
import numpy as np

from configs.files import atomic_write_text

log = logging.getLogger(__name__)

INT8_MIN_COSINE = 0.999  # an int8 model whose features drift further from FP32 is not used


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


@functools.cache
def cpu_supports_bf16() -> bool:
    """Whether OpenVINO reports bf16 support on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@functools.cache
def cpu_has_int8_dot() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX-INT8); without them
    OpenVINO still runs int8 models, but no faster than bf16/f32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def compile_hint() -> str:
    """The precision OpenVINO uses for the layers of a model that are not int8."""
    return "bf16" if cpu_supports_bf16() else "f32"


def resolve_precision(runtime: str, precision: str, int8_ok: bool = True) -> str:
    """The runtime name a (``runtime``, ``precision``) choice gives on this machine, e.g. ``openvino-int8``.

    ``int8_ok=False`` when no calibrated int8 model can be had (refused, or not shipped with a model): then
    an ``int8`` or ``auto`` precision means the best float precision.

    Raises:
        RuntimeError: ``openvino`` was asked for and is not installed.
    """
    if runtime == "tensorflow" or (runtime == "auto" and not openvino_available()):
        return "tensorflow-fp32"
    if not openvino_available():
        raise RuntimeError("runtime 'openvino' requested but the openvino package is not installed")
    if precision == "auto" or (precision == "int8" and not int8_ok):
        precision = "int8" if int8_ok and cpu_has_int8_dot() else compile_hint()
    return f"openvino-{precision}"


def convert_to_openvino(model: keras.Model):
    """The Keras model as an OpenVINO model (converting the traced function: ~4 s for ResNet50, a SavedModel
    export first would take ~12 s)."""
    import openvino as ov
    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    return ov.convert_model(tf.function(lambda x: model(x, training=False), input_signature=[spec]))


def save_ir(converted, xml: Path) -> None:
    """Write an OpenVINO model (``.xml`` + ``.bin``) so that a reader sees both files complete or none."""
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


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def quantize_int8(converted, calibration: np.ndarray, check: np.ndarray) -> tuple[object, OpenVINORuntime, float]:
    """Post-training int8 quantisation (NNCF) of a converted model, compared with FP32.

    Args:
        converted: the FP32 OpenVINO model.
        calibration: images whose activations set the int8 ranges (~32 is enough: measured, 128 gave the
            same cosines).
        check: other images on which the int8 outputs are compared with FP32.

    Returns:
        (the int8 model, it compiled, its worst cosine to FP32 on ``check``).
    """
    import nncf

    logging.getLogger("nncf").setLevel(logging.WARNING)
    # One calibration item holding the whole batch: measured, per-image items gave worse ranges (min
    # cosine 0.9992 against 0.9998 for the same 32 images).
    quantized = nncf.quantize(
        converted, nncf.Dataset([calibration]), subset_size=1, preset=nncf.QuantizationPreset.MIXED
    )
    check = check if len(check) else calibration
    runtime = OpenVINORuntime(quantized, compile_hint(), "openvino-int8")
    worst = float(_cosines(OpenVINORuntime(converted, "f32")(check), runtime(check)).min())
    return quantized, runtime, worst


def int8_runtime(
    model: keras.Model, folder: Path, key: str, images: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[Runtime | None, dict]:
    """The int8 runtime of a frozen network, calibrated once and kept in ``folder`` under ``key``.

    The first call calibrates on ``images()`` (calibration, check) and records the outcome in
    ``<key>-int8.json``; later calls reuse the saved model, or the recorded refusal, without new images,
    so the features it computes stay comparable across runs.

    Returns:
        (the runtime, or ``None`` when int8 was refused; the record: calibration digest, worst cosine).
    """
    import openvino as ov

    record_file, xml = folder / f"{key}-int8.json", folder / f"{key}-int8.xml"
    runtime = None
    if record_file.exists():
        record = json.loads(record_file.read_text())
    else:
        calibration, check = images()
        quantized, runtime, worst = quantize_int8(read_or_convert(model, folder / f"{key}.xml"), calibration, check)
        record = {
            "calibration": hashlib.sha256(calibration.tobytes()).hexdigest()[:16],
            "calibration_images": len(calibration),
            "min_cosine_to_fp32": round(worst, 6),
            "accepted": worst >= INT8_MIN_COSINE,
        }
        if record["accepted"]:
            save_ir(quantized, xml)
        atomic_write_text(record_file, json.dumps(record, indent=2))
        log.info("int8 calibration: %s", record)
    if not record["accepted"] or not xml.exists():
        log.warning(
            "int8 refused for this base (worst cosine to FP32 %.5f < %s): using %s",
            record["min_cosine_to_fp32"],
            INT8_MIN_COSINE,
            compile_hint(),
        )
        return None, record
    return runtime or OpenVINORuntime(ov.Core().read_model(xml), compile_hint(), "openvino-int8"), record


def make_runtime(model: keras.Model, name: str, cache_file: Path | None = None) -> Runtime:
    """Build the runtime ``name`` (from :func:`resolve_precision`, not int8: see :func:`int8_runtime`).

    ``cache_file`` (an ``.xml`` path) keeps OpenVINO's converted model for the next start; key it by the
    model's exact weights.
    """
    if name == "tensorflow-fp32":
        runtime: Runtime = TensorFlowRuntime(model)
    else:
        precision = name.removeprefix("openvino-")
        if precision == "int8":
            raise ValueError("int8 needs calibration: use int8_runtime")
        runtime = OpenVINORuntime(read_or_convert(model, cache_file), precision)
    log.info("inference runtime: %s", runtime.name)
    return runtime
