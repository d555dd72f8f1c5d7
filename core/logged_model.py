"""The logged-model format: what training writes to an MLflow run and serving reads back.

A run holds ``model/`` (the whole Keras network, raw pixels -> probabilities, with its signature and
metadata ``class_names`` and ``image_size``) and, when training embedded with OpenVINO, ``openvino/``: the
frozen embedder exactly as training ran it (int8 or float IR) and ``runtime.json`` describing it, so the
server computes the very features the evaluation saw. :func:`build_runtime` is how a logged model runs:
the server and the quality gate (which re-scores the champion) both use it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

import core.model  # noqa: F401 - registers the custom layers a saved model contains
from core.model_input import SQUASH
from core.ood import INDEX_ARTIFACT, OodIndex
from core.runtime import (
    Chained,
    OpenVINORuntime,
    Runtime,
    TensorFlowRuntime,
    convert_to_openvino,
    make_runtime,
    resolve_backend,
)
from core.runtime.measure import fastest_float
from core.runtime.spec import RuntimeSpec

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
EMBEDDER_ARTIFACT = "openvino"
EMBEDDER_RECORD = "runtime.json"
EVALUATION_ARTIFACT = "evaluation.json"  # the run's test confusion matrix as numbers (read by the about page)


@dataclass(frozen=True)
class EmbedderRecord:
    """``openvino/runtime.json``: which IR file is the embedder, how it ran, and its int8 calibration."""

    runtime: RuntimeSpec
    hint: str  # OpenVINO's precision hint for the layers that are not int8
    xml: str
    int8: dict | None = None

    def to_json(self) -> dict:
        """The record as JSON (``runtime`` by name)."""
        return {"runtime": self.runtime.name, "hint": self.hint, "xml": self.xml, "int8": self.int8}

    @classmethod
    def from_json(cls, data: dict) -> EmbedderRecord:
        """A record read back."""
        return cls(
            runtime=RuntimeSpec.parse(data["runtime"]), hint=data["hint"], xml=data["xml"], int8=data.get("int8")
        )


def model_signature(image_size: int, num_classes: int) -> ModelSignature:
    """Image batch in (float32 RGB 0..255), class probabilities out."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, image_size, image_size, 3), "image")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, num_classes), "probabilities")]),
    )


def _pinned_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("tensorflow-cpu", "keras", "mlflow", "numpy", "pillow")]


def log_classifier(
    model: keras.Model,
    class_names: list[str],
    image_size: int,
    resize: str = SQUASH,
    registered_name: str | None = None,
) -> str:
    """Log the whole image -> probabilities model to the active run (and register it under
    ``registered_name``, if given); returns its model URI. ``resize``: how photos become its input."""
    # No input example: the signature already gives the input's shape and type, and MLflow would reload the
    # model to run the example through Model.predict (seconds per model, a tf.data C++ error line, a bar).
    info = mlflow.tensorflow.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=model_signature(image_size, len(class_names)),
        pip_requirements=_pinned_requirements(),
        metadata={"class_names": class_names, "image_size": image_size, "resize": resize},
        registered_model_name=registered_name,
    )
    return info.model_uri


def log_embedder(xml: Path, record: EmbedderRecord) -> None:
    """Log the embedder's IR (``xml`` and its ``.bin``) and its record to the active run, under ``openvino/``."""
    for file in (xml, xml.with_suffix(".bin")):
        mlflow.log_artifact(str(file), EMBEDDER_ARTIFACT)
    mlflow.log_dict(record.to_json(), f"{EMBEDDER_ARTIFACT}/{EMBEDDER_RECORD}")


@dataclass(frozen=True)
class LoggedModel:
    """A logged model read back into memory: the Keras network, its metadata and, if training logged one, its
    embedder (an OpenVINO model, read before its files were removed)."""

    model: keras.Model
    class_names: list[str]
    image_size: int
    run_id: str | None
    embedder_ir: Any = None  # openvino.Model
    embedder: EmbedderRecord | None = None
    resize: str = SQUASH
    ood: OodIndex | None = None  # the "none of these" index training logged beside the model, if any


def load_logged_model(model_uri: str, with_embedder: bool = True) -> LoggedModel:
    """Load a logged (or registered: ``models:/name/version``) model, and its embedder when asked and present.

    The artifacts are downloaded into a temporary folder that is gone when this returns: everything is
    read into memory first, so loading versions (a server following its alias) leaves nothing on disk.
    """
    with tempfile.TemporaryDirectory(prefix="stj-model-") as folder:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(Path(folder) / "model"))
        info = mlflow.models.Model.load(local)  # its MLmodel, already here: no second trip to the store
        # inference only: a compiled load would rebuild the optimizer and warn when its slots differ from the
        # saved ones (a fine-tuned model re-freezes its base after training)
        model = mlflow.tensorflow.load_model(local, keras_model_kwargs={"compile": False})
        ir, record = None, None
        if with_embedder and info.run_id:
            ir, record = _read_embedder(info.run_id, Path(folder))
        ood = _read_ood(info.run_id, Path(folder)) if info.run_id else None
    meta = info.metadata or {}
    return LoggedModel(
        model=model,
        class_names=list(meta["class_names"]),
        image_size=int(meta["image_size"]),
        run_id=info.run_id,
        embedder_ir=ir,
        embedder=record,
        resize=meta.get("resize", SQUASH),  # models logged before it was recorded were squashed
        ood=ood,
    )


def _read_ood(run_id: str, folder: Path) -> OodIndex | None:
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=INDEX_ARTIFACT, dst_path=str(folder))
    except (MlflowException, OSError):
        return None  # a model logged without one (the ImageNet model, a fine-tuned one, or an older version)
    return OodIndex.from_bytes(Path(local).read_bytes())


def _read_embedder(run_id: str, folder: Path) -> tuple[Any, EmbedderRecord | None]:
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EMBEDDER_ARTIFACT, dst_path=str(folder))
        )
    except (MlflowException, OSError):
        log.info("run %s has no OpenVINO embedder", run_id)
        return None, None
    if not (local / EMBEDDER_RECORD).exists():
        return None, None
    import openvino as ov

    record = EmbedderRecord.from_json(json.loads((local / EMBEDDER_RECORD).read_text()))
    core = ov.Core()
    core.set_property({"ENABLE_MMAP": False})  # weights copied into memory: the files are removed next
    return core.read_model(str(local / record.xml)), record


def build_runtime(logged: LoggedModel, choice: str) -> Runtime:
    """The serving runtime: the embedder training logged (``openvino/``: the precision training chose and
    evaluated, so the very features the evaluation saw) followed by the head; without one (fine-tuned, or
    trained on TensorFlow), the whole model converted here, in the float precision measured faster. A model
    with a "none of these" index runs as embedder then head (:class:`Chained`), so its features are at hand.
    """
    backend, record = resolve_backend(choice), logged.embedder
    if backend == "tensorflow":
        if logged.ood is not None:
            return Chained(*(TensorFlowRuntime(logged.model.get_layer(n)) for n in ("embedder", "head")))
        return make_runtime(logged.model, RuntimeSpec("tensorflow", "f32"))
    if record is None or logged.embedder_ir is None:
        whole = logged.model if logged.ood is None else logged.model.get_layer("embedder")
        runtime = fastest_float(convert_to_openvino(whole), logged.image_size)
        if logged.ood is not None:
            runtime = Chained(runtime, OpenVINORuntime(convert_to_openvino(logged.model.get_layer("head")), "f32"))
        log.info("inference runtime: %s (whole model converted)", runtime.name)
        return runtime
    embedder = OpenVINORuntime(logged.embedder_ir, record.hint, record.runtime.name)
    head = OpenVINORuntime(convert_to_openvino(logged.model.get_layer("head")), "f32")
    log.info("inference runtime: %s (embedder from training) + head", embedder.name)
    return Chained(embedder, head)
