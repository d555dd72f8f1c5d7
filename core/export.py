"""A logged model in formats other tools load: TensorFlow SavedModel, OpenVINO IR, ONNX.

Every export is the whole network: raw RGB pixels (0..255, ``image_size``² after the logged ``resize``) in,
class probabilities out, so a consumer needs no STJ code. ``stj.json`` beside it says which class each
output is and how a photo becomes the input. The export is written into a temporary folder and renamed into
place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from core.logged_model import LoggedModel

FORMATS = ("onnx", "openvino", "saved_model")
DESCRIPTION = "stj.json"


def _saved_model(logged: LoggedModel, folder: Path) -> Path:
    target = folder / "saved_model"
    logged.model.export(str(target), format="tf_saved_model", verbose=False)
    return target


def _openvino(logged: LoggedModel, folder: Path) -> Path:
    import openvino as ov

    from core.runtime import convert_to_openvino

    target = folder / "model.xml"
    ov.save_model(convert_to_openvino(logged.model), str(target), compress_to_fp16=False)
    return target


def _onnx(logged: LoggedModel, folder: Path) -> Path:
    import tensorflow as tf
    import tf2onnx

    target = folder / "model.onnx"
    size = logged.image_size
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(logged.model, input_signature=spec, opset=17, output_path=str(target))
    return target


EXPORTERS = {"onnx": _onnx, "openvino": _openvino, "saved_model": _saved_model}


def export_model(logged: LoggedModel, fmt: str, output: str | Path, source: str) -> Path:
    """Write ``logged`` as ``fmt`` into ``output/<fmt>/`` (replacing an earlier export there).

    Args:
        logged: the model read back from MLflow.
        fmt: one of :data:`FORMATS`.
        output: the folder to write into (created).
        source: where the model came from (e.g. ``models:/stj-classifier/3``), recorded in ``stj.json``.

    Returns:
        The exported model's path (file or folder).
    """
    final = Path(output) / fmt
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{fmt}-", dir=final.parent))
    try:
        written = EXPORTERS[fmt](logged, work)
        description = {
            "source": source,
            "format": fmt,
            "file": written.name,
            "class_names": logged.class_names,
            "input": {"image_size": logged.image_size, "resize": logged.resize, "pixels": "RGB float32 0..255"},
            "output": "probabilities, one per class, in class_names order",
        }
        (work / DESCRIPTION).write_text(json.dumps(description, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final / written.name
