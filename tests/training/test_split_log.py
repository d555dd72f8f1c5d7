"""The split is logged once per distinct split in an experiment; every run points to the copy it was trained
on, and runs from before the pointer still read their own ``split.csv``."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from core.split_log import SPLIT_ARTIFACT, log_split, read_logged_split


def _split(n: int) -> pd.DataFrame:
    sides = ["train", "val", "test"]
    return pd.DataFrame(
        {"path": [f"raw/saree/{i}.jpg" for i in range(n)], "class": "saree", "split": [sides[i % 3] for i in range(n)]}
    )


def test_siblings_share_one_copy_and_a_changed_split_gets_its_own(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        experiment = client.create_experiment("split-log", (tmp_path / "artifacts").as_uri())
        holders, runs = [], []
        for split in (_split(30), _split(30), _split(33)):
            with mlflow.start_run(experiment_id=experiment) as run:
                holders.append(log_split(split))
                runs.append(run.info.run_id)
        with mlflow.start_run(experiment_id=experiment) as legacy:  # logged before the pointer existed
            mlflow.log_text(_split(9).to_csv(index=False), "split.csv")
        assert holders == [runs[0], runs[0], runs[2]]
        files = [[a.path for a in client.list_artifacts(r)] for r in runs]
        assert files == [[SPLIT_ARTIFACT], [], [SPLIT_ARTIFACT]]
        for run_id, expected in zip([*runs, legacy.info.run_id], [30, 30, 33, 9], strict=True):
            pd.testing.assert_frame_equal(read_logged_split(run_id), _split(expected))
    finally:
        mlflow.set_tracking_uri(None)
