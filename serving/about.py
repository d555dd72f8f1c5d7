"""What the about page shows, read from the registry: the served model's run (backbone, head, parameter counts,
test metrics, per-class scores, confusion matrix, photos per class and split), when the pipeline last ran and
the alias history (:mod:`core.aliases`).

Read once per served version and kept (a run's record does not change); the last-run time and the alias history
are re-read at most once a minute. When the store can't answer, the page shows what it has and the next request asks again. A model that did not come from the registry (tests) shows only what it knows itself.

Config keys: ``tracking.uri``, ``train.dense_units``/``train.dropout`` as logged with the run.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from core.aliases import alias_history
from core.logged_model import EVALUATION_ARTIFACT
from core.split_log import read_logged_split

_lock = threading.Lock()
_runs: dict[tuple[str, str, str], dict] = {}
_fresh: dict[tuple, tuple[float, Any]] = {}  # facts read at most once a minute: (when read, what)
FRESH_S = 60  # an alias moves or a run ends at most a few times a day: once a minute is fresh enough
HISTORY_SHOWN = 20  # the newest alias moves the page lists


def _when(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None


def _artifact_text(client: MlflowClient, run_id: str, name: str) -> str | None:
    try:
        path = client.download_artifacts(run_id, name)
    except (MlflowException, OSError):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _photos(frame: pd.DataFrame | None) -> dict[str, dict[str, int]] | None:
    if frame is None or frame.empty:
        return None
    counts = frame.groupby(["class", "split"]).size()
    return {label: {side: int(n) for side, n in counts[label].items()} for label in counts.index.levels[0]}


def run_facts(client: MlflowClient, name: str, version: str, classes: list[str]) -> dict:
    """The registered version's training run as the about page shows it (``MlflowException`` if unknown)."""
    run = client.get_run(client.get_model_version(name, version).run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    evaluation = _artifact_text(client, run.info.run_id, EVALUATION_ARTIFACT)
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "trained": _when(run.info.end_time or run.info.start_time),
        "experiment_id": run.info.experiment_id,
        "backbone": tags.get("backbone"),
        "weights": tags.get("weights.used"),
        "runtime": tags.get("runtime"),
        "precision": tags.get("precision.chosen"),
        "finetune": tags.get("finetune"),
        "head": {"dense_units": params.get("train.dense_units"), "dropout": params.get("train.dropout")},
        "parameters": {
            "backbone": metrics.get("params_backbone"),
            "head": metrics.get("params_head"),
        },
        "image_size": params.get("train.image_size"),
        "metrics": {k: metrics.get(f"test_{k}") for k in ("accuracy", "macro_f1", "macro_precision", "macro_recall")},
        "per_class": [
            {k: metrics.get(f"test_{label}_{k}") for k in ("precision", "recall", "f1")} | {"class": label}
            for label in classes
        ],
        "confusion_matrix": json.loads(evaluation) if evaluation else None,
        "photos": _photos(read_logged_split(run.info.run_id, client)),
        "split": {side: metrics.get(f"n_{side}") for side in ("train", "val", "test")},
    }


def last_run(client: MlflowClient, experiment_id: str) -> dict | None:
    """The experiment's newest top-level run: when it started and how it ended."""
    found = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=50)
    top = [run for run in found if "mlflow.parentRunId" not in run.data.tags]  # not a run's baselines or folds
    if not top:
        return None
    info = top[0].info
    return {"started": _when(info.start_time), "status": info.status, "name": info.run_name}


def about(tracking_uri: str, model: Any) -> dict:
    """Everything ``/api/about`` answers for the served ``model`` (a ``Predictor``)."""
    ref = model.ref
    facts: dict[str, Any] = {
        "model": {"name": ref.name, "version": ref.version, "classes": model.class_names,
                  "image_size": model.image_size, "runtime": model.runtime.name},
        "run": None,
        "last_run": None,
        "alias_history": None,
    }  # fmt: skip
    if not str(ref.uri).startswith("models:/"):
        return facts  # not from the registry
    client = MlflowClient(tracking_uri=tracking_uri)
    facts["alias_history"] = _once_a_minute(
        ("history", tracking_uri, ref.name),
        lambda: [asdict(move) for move in alias_history(client, ref.name)[:HISTORY_SHOWN]],
    )
    key = (tracking_uri, ref.name, str(ref.version))
    with _lock:
        known = _runs.get(key)
    if known is None:  # read outside the lock: a slow store must not hold up other requests
        known = _read(lambda: run_facts(client, ref.name, str(ref.version), model.class_names))
        if known is not None:  # only successes are kept; a failure is tried again next time
            with _lock:
                _runs[key] = known
    facts["run"] = known
    if known is not None:
        experiment = known["experiment_id"]
        facts["last_run"] = _once_a_minute(("last run", experiment), lambda: last_run(client, experiment))
    return facts


def _once_a_minute(key: tuple, reader):
    """What ``reader()`` gave (see :func:`_read`) at most :data:`FRESH_S` ago under ``key``, read again when
    older; read outside the lock, so a slow store holds up no other request."""
    with _lock:
        read_at, value = _fresh.get(key, (0.0, None))
    if time.monotonic() - read_at > FRESH_S:
        value = _read(reader)
        with _lock:
            _fresh[key] = (time.monotonic(), value)
    return value


def _read(reader):
    """``reader()``, or ``None`` when the tracking store can't answer (the page shows what it has)."""
    try:
        return reader()
    except (MlflowException, OSError):
        return None
