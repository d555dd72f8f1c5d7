"""Int8 post-training quantisation (NNCF) of a frozen network, calibrated once and kept beside its cache.

The cosine of its features to FP32 on images it was not calibrated on is recorded (worst and mean). With a
mean below :data:`INT8_MIN_COSINE` the quantisation is clearly broken and refused (the refusal is
remembered): a broken model moves every image, where the worst of a few dozen is one outlier. Above it,
whether int8 is *used* is decided by validation accuracy (``training.embedding.precision``). Measured: ResNet50 worst
0.9999; EfficientNet-Lite0 mean 0.975-0.984, worst 0.90-0.95 with full bias correction (mean 0.93, worst
0.83-0.87 with the fast one): depthwise convolutions quantise less well, so Lite backbones ask for the
slower, full correction.

On a CPU without VNNI instructions (AVX2 only: some EPYC machines) OpenVINO's int8 kernels multiply u8 by s8
into 16-bit sums that saturate; NNCF's overflow fix (weights quantised to 7 bits) avoids it, and is applied to
every layer there (NNCF's default fixes only the first). Measured on such an EPYC, Lite0 on the test suite's
drawn photos: mean cosine 0.939 without it (refused), 0.960 with it. Where VNNI exists the default is kept.

Config keys: ``train.int8_calibration_images``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from configs.files import atomic_write_text
from core.runtime.openvino import OpenVINORuntime, read_or_convert, save_ir
from core.runtime.spec import Runtime

log = logging.getLogger(__name__)

INT8_MIN_COSINE = 0.95  # a mean cosine below this: the quantised features are no longer the same features
INT8_NAME = "openvino-int8"
# How calibration feeds NNCF; part of the calibration's digest, hence of the int8 features' store key, so that
# features of a model calibrated another way are never mixed with these.
CALIBRATION_METHOD = "global min/max; per-photo items unless full bias correction"


def cpu_has_vnni(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU has VNNI (AVX512-VNNI, AVX-VNNI or AMX-INT8): int8 dot products without 16-bit
    saturation; ``None`` when it cannot be told (no ``/proc/cpuinfo``)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), None)
    if flags is None:
        return None
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two batches of vectors."""
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def quantize_int8(
    converted, calibration: np.ndarray, check: np.ndarray, hint: str = "f32", thorough: bool = False
) -> tuple[object, OpenVINORuntime, np.ndarray]:
    """Post-training int8 quantisation (NNCF) of a converted model, compared with FP32.

    Args:
        converted: the FP32 OpenVINO model.
        calibration: images whose activations set the int8 ranges (~32 is enough: measured, 128 gave the
            same cosines).
        check: other images on which the int8 outputs are compared with FP32.
        hint: the precision OpenVINO runs the layers that stay float in (the faster one measured here).
        thorough: full bias correction (slower, measured: Lite0 ~20 s instead of ~3 s; worst cosine 0.94
            instead of 0.87).

    Returns:
        (the int8 model, it compiled, its cosines to FP32 on ``check``).
    """
    import nncf
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    logging.getLogger("nncf").setLevel(logging.WARNING)

    saturating = cpu_has_vnni() is False
    # The activation ranges are the global min and max over the calibration photos, whether NNCF gets them as
    # one item or one photo per item (its default, the mean of each item's min and max, narrows with smaller
    # items: a min cosine of 0.9992 per photo against 0.9998 as one item). With the fast bias correction the
    # photos go one per item: bit-equal outputs (ResNet50), and NNCF's statistics pass holds one photo's
    # activations of every layer instead of the whole batch's (ResNet50 on 32 photos: +0.3 GiB instead of
    # +2.2 GiB, which was the first run's memory peak). The full bias correction is not invariant to the split
    # (Lite0 on the suite's drawn photos, mean cosine: 0.960 as one item, 0.955 in items of 8, 0.936 per
    # photo): it keeps one item.
    advanced = nncf.AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX,
        **({"overflow_fix": nncf.OverflowFix.ENABLE} if saturating else {}),
    )
    items = [calibration] if thorough else [calibration[i : i + 1] for i in range(len(calibration))]
    log.info(
        "calibrating int8 on %d photos (NNCF%s%s)",
        len(calibration),
        ", full bias correction" if thorough else "",
        ", overflow fix: this CPU has no VNNI" if saturating else "",
    )
    with _quiet_rich():  # NNCF draws rich bars ("Statistics collection ━━━"), with ANSI codes in piped logs
        quantized = nncf.quantize(
            converted,
            nncf.Dataset(items),
            subset_size=len(items),
            preset=nncf.QuantizationPreset.MIXED,
            fast_bias_correction=not thorough,
            advanced_parameters=advanced,
        )
    check = check if len(check) else calibration
    runtime = OpenVINORuntime(quantized, hint, INT8_NAME)
    return quantized, runtime, cosines(OpenVINORuntime(converted, "f32")(check), runtime(check))


@contextmanager
def _quiet_rich() -> Iterator[None]:
    """Rich's global console prints nothing inside the block."""
    import rich

    console = rich.get_console()
    was_quiet, console.quiet = console.quiet, True
    try:
        yield
    finally:
        console.quiet = was_quiet


def int8_files(folder: Path, key: str) -> tuple[Path, Path]:
    """(the record, the int8 model's ``.xml``) of the base ``key`` in ``folder``."""
    return folder / f"{key}-int8.json", folder / f"{key}-int8.xml"


def int8_runtime(
    model: keras.Model,
    folder: Path,
    key: str,
    images: Callable[[], tuple[np.ndarray, np.ndarray]],
    hint: str = "f32",
    thorough: bool = False,
) -> tuple[Runtime | None, dict]:
    """The int8 runtime of a frozen network, calibrated once and kept in ``folder`` under ``key``.

    The first call calibrates on ``images()`` (calibration, check) and records the outcome in
    ``<key>-int8.json``; later calls reuse the saved model, or the recorded refusal, without new images,
    so the features it computes stay comparable across runs. ``hint``, ``thorough``: as in
    :func:`quantize_int8`.

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
        converted = read_or_convert(model, folder / f"{key}.xml")
        quantized, runtime, cos = quantize_int8(converted, calibration, check, hint, thorough)
        record = {
            "calibration": hashlib.sha256(calibration.tobytes() + CALIBRATION_METHOD.encode()).hexdigest()[:16],
            "calibration_images": len(calibration),
            "calibration_method": CALIBRATION_METHOD,
            "min_cosine_to_fp32": round(float(cos.min()), 6),
            "mean_cosine_to_fp32": round(float(cos.mean()), 6),
            "full_bias_correction": thorough,
            "overflow_fix": cpu_has_vnni() is False,
            "accepted": bool(cos.mean() >= INT8_MIN_COSINE),
        }
        if record["accepted"]:
            save_ir(quantized, xml)
        atomic_write_text(record_file, json.dumps(record, indent=2))
        log.info("int8 calibration: %s", record)
    if not record["accepted"] or not xml.exists():
        log.warning(
            "int8 refused for this base (mean cosine to FP32 %.5f < %s): float precisions only",
            record.get("mean_cosine_to_fp32", record["min_cosine_to_fp32"]),
            INT8_MIN_COSINE,
        )
        return None, record
    return runtime or OpenVINORuntime(ov.Core().read_model(xml), hint, INT8_NAME), record
