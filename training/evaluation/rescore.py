"""Score a registered or logged model on a split's test photos, exactly as the server would run it.

The gate re-scores the champion (and the candidate) here, so both numbers come from the same photos and the
same code: the logged model loaded with its embedder, :func:`core.logged_model.build_runtime`, the model's own
resize.

Config keys: ``project.data_dir``, ``tracking.uri``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from core.logged_model import build_runtime, load_logged_model
from core.model_input import load_images
from core.split_log import read_logged_split
from training.evaluation.evaluate import classification_metrics
from training.publishing.gate import GATE_METRIC, Scores

BATCH = 16


def test_rows_of_run(run_id: str, client: MlflowClient | None = None) -> pd.DataFrame:
    """The test photos of a run (the split it logged, :func:`core.split_log.read_logged_split`, from ``client``'s
    store; default: the global one): ``path`` and ``class``; ``ValueError`` if it logged none."""
    split = read_logged_split(run_id, client)
    if split is None:
        raise ValueError(f"run {run_id} logged no split")
    return split[split["split"] == "test"][["path", "class"]].reset_index(drop=True)


def score_model(model_uri: str, rows: pd.DataFrame, data_dir: str | Path) -> Scores:
    """Macro-F1 and per-class F1 of ``model_uri`` on ``rows`` (paths relative to ``data_dir``); O(N) time,
    memory O(batch) for the photos (each batch is decoded, inferred and dropped).

    Raises:
        ValueError: a test class is not one of the model's classes.
    """
    logged = load_logged_model(model_uri, with_embedder=True)
    unknown = sorted(set(rows["class"]) - set(logged.class_names))
    if unknown:
        raise ValueError(f"the model does not know the class(es) {unknown}")
    runtime = build_runtime(logged, "auto")
    paths = [Path(data_dir) / p for p in rows["path"]]
    # one batch decoded at a time: memory is a batch of pixels plus N × classes probabilities
    probs = np.concatenate(
        [
            runtime(load_images(paths[i : i + BATCH], logged.image_size, resize=logged.resize))
            for i in range(0, len(paths), BATCH)
        ]
        or [np.zeros((0, len(logged.class_names)), np.float32)]
    )
    names = logged.class_names
    y_true = rows["class"].map({name: i for i, name in enumerate(names)}).to_numpy()
    metrics = classification_metrics(y_true, probs.argmax(axis=1), names)
    present = sorted(set(rows["class"]), key=names.index)
    return Scores(metrics[GATE_METRIC], {name: metrics[f"test_{name}_f1"] for name in present})
