"""The split as an MLflow artifact that does not grow with the number of runs: one ``split.parquet`` per
distinct split in an experiment, which every run trained on it points to.

Written by training (``track``), read by training (``rescore``) and serving (``about``). Tags on each run:
``split.digest`` (SHA-256 of the split as CSV), ``split.run_id`` (the run holding the file); the holder also
has ``split.held``. Sibling runs of one pipeline run (backbones, sweep points) and later runs
whose split did not change add no copy.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

SPLIT_ARTIFACT = "split.parquet"


def log_split(split: pd.DataFrame) -> str:
    """Log the split once per content: the first run of the experiment with this split holds
    ``split.parquet``; every run (that one too) gets tags ``split.digest`` (SHA-256 of the split as CSV) and
    ``split.run_id`` (the run holding the file), so sibling runs and weekly runs with an unchanged split add
    no copy. O(N) to hash and, once, to write (~20 B a photo in Parquet). Returns the holding run's id."""
    digest = hashlib.sha256(split.to_csv(index=False).encode()).hexdigest()
    run = mlflow.active_run()
    held = mlflow.search_runs(
        [run.info.experiment_id],
        f"tags.`split.digest` = '{digest}' and tags.`split.held` = 'true'",
        max_results=1,
        output_format="list",
    )
    holder = held[0].info.run_id if held else run.info.run_id
    if not held:
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / SPLIT_ARTIFACT
            split.to_parquet(file, index=False)
            mlflow.log_artifact(str(file))
    mlflow.set_tags({"split.digest": digest, "split.run_id": holder} | ({} if held else {"split.held": "true"}))
    return holder


def read_logged_split(run_id: str, client: MlflowClient | None = None) -> pd.DataFrame | None:
    """The split a run was trained on: the ``split.parquet`` its ``split.run_id`` tag points to (a run logged
    before that tag existed has its own ``split.csv``); ``None`` when the run has neither."""
    client = client or MlflowClient()
    holder = client.get_run(run_id).data.tags.get("split.run_id")
    with tempfile.TemporaryDirectory() as folder:
        try:
            if holder is None:
                return pd.read_csv(client.download_artifacts(run_id, "split.csv", folder))
            return pd.read_parquet(client.download_artifacts(holder, SPLIT_ARTIFACT, folder))
        except (MlflowException, OSError):
            return None
