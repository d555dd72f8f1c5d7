"""Int8 post-training quantisation (NNCF) of a frozen network, calibrated once and kept beside its cache.

An int8 model is used only if its worst cosine to FP32 on images it was not calibrated on is at least
:data:`INT8_MIN_COSINE`; otherwise the refusal is recorded and remembered.

Config keys: ``train.int8_calibration_images``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from configs.files import atomic_write_text
from core.runtime.cpu import compile_hint
from core.runtime.openvino import OpenVINORuntime, read_or_convert, save_ir
from core.runtime.spec import Runtime

log = logging.getLogger(__name__)

INT8_MIN_COSINE = 0.999  # an int8 model whose features drift further from FP32 is not used
INT8_NAME = "openvino-int8"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two batches of vectors."""
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
    runtime = OpenVINORuntime(quantized, compile_hint(), INT8_NAME)
    worst = float(cosines(OpenVINORuntime(converted, "f32")(check), runtime(check)).min())
    return quantized, runtime, worst


def int8_files(folder: Path, key: str) -> tuple[Path, Path]:
    """(the record, the int8 model's ``.xml``) of the base ``key`` in ``folder``."""
    return folder / f"{key}-int8.json", folder / f"{key}-int8.xml"


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

    record_file, xml = int8_files(folder, key)
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
    return runtime or OpenVINORuntime(ov.Core().read_model(xml), compile_hint(), INT8_NAME), record
