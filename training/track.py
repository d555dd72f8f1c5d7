"""MLflow at the edges: where runs go, what each run records, and publishing to the registry.

The default store is embedded: a sqlite database plus a local artifact folder in the working directory.

Config keys: ``tracking.uri``, ``tracking.artifact_dir``, ``tracking.experiment``, ``tracking.model_name``,
``tracking.alias``, ``tracking.gate_margin``, ``tracking.gate_floor``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from configs.schema import Config, TrackingConfig
from training.gate import GATE_METRIC, decide
from training.runtime import compile_hint

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
OPENVINO_ARTIFACT = "openvino"


def configure_tracking(cfg: TrackingConfig) -> str:
    """Point MLflow at the configured store and experiment (created with our artifact folder); returns its id."""
    mlflow.set_tracking_uri(cfg.uri)
    experiment = mlflow.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        location = Path(cfg.artifact_dir).resolve()
        location.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(cfg.experiment, artifact_location=location.as_uri())
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def flatten_config(config: Config) -> dict[str, str]:
    """``section.key -> value`` for every config value, as MLflow params."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        else:
            flat[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)

    walk("", config.model_dump(mode="json"))
    return flat


class EpochMetrics(keras.callbacks.Callback):
    """Logs every epoch's loss and accuracy (train and validation) to the active MLflow run."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        metrics = {(k if k.startswith("val_") else f"train_{k}"): float(v) for k, v in (logs or {}).items()}
        metrics.pop("train_learning_rate", None)
        mlflow.log_metrics(metrics, step=epoch + 1)


def model_signature(image_size: int, num_classes: int) -> ModelSignature:
    """Image batch in (float32 RGB 0..255), class probabilities out."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, image_size, image_size, 3), "image")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, num_classes), "probabilities")]),
    )


def log_classifier(model: keras.Model, class_names: list[str], image_size: int, example: np.ndarray) -> str:
    """Log the whole image -> probabilities model to the active run; returns its model URI."""
    info = mlflow.tensorflow.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=model_signature(image_size, len(class_names)),
        input_example=example,
        pip_requirements=_pinned_requirements(),
        metadata={"class_names": class_names, "image_size": image_size},
    )
    return info.model_uri


def log_openvino_embedder(fp32_xml: Path, runtime_name: str, int8: dict | None) -> None:
    """Log the frozen embedder exactly as training ran it in OpenVINO (``openvino/`` in the run, described by
    ``openvino/runtime.json``), so the server computes the same features as the evaluation did and skips a
    ~4 s conversion."""
    xml = fp32_xml.with_name(f"{fp32_xml.stem}-int8.xml") if runtime_name == "openvino-int8" else fp32_xml
    if not xml.exists():
        return
    hint = compile_hint() if runtime_name == "openvino-int8" else runtime_name.removeprefix("openvino-")
    for file in (xml, xml.with_suffix(".bin")):
        mlflow.log_artifact(str(file), OPENVINO_ARTIFACT)
    record = {"runtime": runtime_name, "hint": hint, "xml": xml.name, "int8": int8}
    mlflow.log_dict(record, f"{OPENVINO_ARTIFACT}/runtime.json")


def _pinned_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("tensorflow-cpu", "keras", "mlflow", "numpy", "pillow")]


def publish(cfg: TrackingConfig, model_uri: str, run_id: str) -> dict[str, str | bool]:
    """Register the run's model and move ``tracking.alias`` to it if it passes the quality gate.

    Returns:
        ``version``, ``promoted`` and the gate's ``reason``; a rejected version is tagged ``rejected``.
    """
    mlflow.set_tracking_uri(cfg.uri)
    client = MlflowClient()
    candidate = client.get_run(run_id).data.metrics[GATE_METRIC]
    try:
        current = client.get_model_version_by_alias(cfg.model_name, cfg.alias)
        champion = client.get_run(current.run_id).data.metrics.get(GATE_METRIC)
    except MlflowException:
        champion = None
    decision = decide(candidate, champion, cfg.gate_margin, cfg.gate_floor)
    version = str(mlflow.register_model(model_uri, cfg.model_name, tags={"run_id": run_id}).version)
    if decision.promote:
        client.set_registered_model_alias(cfg.model_name, cfg.alias, version)
        client.set_model_version_tag(cfg.model_name, version, "gate", "promoted")
        log.info("%s version %s is now @%s: %s", cfg.model_name, version, cfg.alias, decision.reason)
    else:
        client.set_model_version_tag(cfg.model_name, version, "rejected", decision.reason)
        log.warning("%s version %s NOT promoted: %s", cfg.model_name, version, decision.reason)
    client.set_tag(run_id, "gate.decision", "promoted" if decision.promote else "rejected")
    client.set_tag(run_id, "gate.reason", decision.reason)
    return {"version": version, "promoted": decision.promote, "reason": decision.reason}
