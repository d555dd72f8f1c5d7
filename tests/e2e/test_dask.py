"""The Dask task runner gives the same result as a local run: the same manifest and scrape counts, the same
features, bit for bit (TensorFlow f32 is deterministic here), and the same champion metrics; scraping per
query, embedding and the k-fold folds really ran as tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.processes import free_port

pytestmark = pytest.mark.slow
SAME_BATCHES = ["train.embed_batch_size=8"]  # both runs embed in batches of 8 photos


def _vectors(data_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for file in sorted((data_dir / "embeddings").glob("*.npz")):
        with np.load(file) as data:
            out[file.name] = dict(zip(data["sha256"].tolist(), data["vectors"], strict=True))
    return out


def _champion_metrics(root: Path) -> dict[str, float]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    version = client.get_model_version_by_alias("stj-classifier", "champion")
    return client.get_run(version.run_id).data.metrics


def _scrape_outcome(data_dir: Path) -> tuple[set, dict]:
    manifest = pd.read_csv(data_dir / "manifest.csv", dtype=str)
    report = json.loads((data_dir / "scrape_report.json").read_text())
    counts = {k: v for k, v in report.items() if k not in ("started_at", "seconds")}
    return set(map(tuple, manifest[["class", "image_id", "sha256", "path", "conflict"]].values)), counts


def test_a_dask_run_gives_the_same_manifest_features_and_champion_as_a_local_run(
    tmp_path: Path, overrides_for, stj
) -> None:
    local, dask = tmp_path / "local", tmp_path / "dask"
    ran = stj(
        ["run", "-c", "configs/demo.yaml"],
        [*overrides_for(local), f"scrape.base_url=http://127.0.0.1:{free_port()}", *SAME_BATCHES],
    )
    assert ran.returncode == 0, ran.stderr[-3000:]

    fanned = stj(
        ["run", "-c", "configs/demo.yaml"],
        [
            *overrides_for(dask),
            f"scrape.base_url=http://127.0.0.1:{free_port()}",
            *SAME_BATCHES,
            "orchestration.task_runner=dask",  # a local cluster of two worker processes
            "orchestration.embed_shard_size=8",
        ],
    )
    output = fanned.stdout + fanned.stderr
    assert fanned.returncode == 0, output[-3000:]
    assert "scraped 3 queries as tasks on a local Dask cluster" in output, output[-3000:]
    assert "in 5 shard tasks on a local Dask cluster" in output, output[-3000:]  # 36 photos, 8 per shard
    assert output.count("Task run 'cross-validation-fold") >= 3, output[-3000:]

    assert _scrape_outcome(dask / "data") == _scrape_outcome(local / "data")
    assert not (dask / "data" / "scrape_parts").exists()
    by_local, by_dask = _vectors(local / "data"), _vectors(dask / "data")
    assert set(by_local) == set(by_dask) and len(by_local) == 2  # one cache file per backbone
    for name, vectors in by_local.items():
        assert vectors.keys() == by_dask[name].keys()
        assert all(np.array_equal(vectors[sha], by_dask[name][sha]) for sha in vectors), name
    assert not list((dask / "data" / "embeddings").glob("*.shards")), "shards are merged into the cache file"

    expected, got = _champion_metrics(local), _champion_metrics(dask)
    assert {k: v for k, v in got.items() if k.startswith(("test_", "cv_"))} == {
        k: v for k, v in expected.items() if k.startswith(("test_", "cv_"))
    }
