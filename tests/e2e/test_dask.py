"""The Dask task runner gives the same result as a local run (the session's reference run, which embeds in the
same batches of 8): the same manifest and scrape counts, the same features, bit for bit (TensorFlow f32 is
deterministic here), and the same champion metrics; scraping per query, embedding and the k-fold folds really
ran as tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.processes import free_port
from tests.support import REFERENCE_EXTRAS
from training.embedding.store import EmbeddingStore

pytestmark = pytest.mark.slow


def _vectors(data_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for folder in sorted((data_dir / "embeddings").glob("*.store")):
        store = EmbeddingStore(folder.parent, folder.name.removesuffix(".store"))
        out[folder.name] = dict(zip(store.keys(), store.lookup(store.keys()), strict=True))
    return out


def _champion_metrics(tracking_uri: str) -> dict[str, float]:
    client = MlflowClient(tracking_uri=tracking_uri)
    version = client.get_model_version_by_alias("stj-classifier", "champion")
    return client.get_run(version.run_id).data.metrics


def _scrape_outcome(data_dir: Path) -> tuple[set, dict]:
    manifest = pd.read_csv(data_dir / "manifest.csv", dtype=str)
    report = json.loads((data_dir / "scrape_report.json").read_text())
    counts = {k: v for k, v in report.items() if k not in ("started_at", "seconds")}
    return set(map(tuple, manifest[["class", "image_id", "sha256", "path", "conflict"]].values)), counts


def test_a_dask_run_gives_the_same_manifest_features_and_champion_as_a_local_run(
    tmp_path: Path, overrides_for, reference, stj
) -> None:
    dask = tmp_path / "dask"
    fanned = stj(
        ["run", "-c", "configs/demo.yaml"],
        [
            *overrides_for(dask),
            *REFERENCE_EXTRAS,
            "tracking.imagenet_model=",  # the ImageNet model's registration has no Dask part to compare
            f"scrape.base_url=http://127.0.0.1:{free_port()}",
            "orchestration.task_runner=dask",  # a local cluster of two worker processes
            "orchestration.embed_shard_size=8",
        ],
    )
    output = fanned.stdout + fanned.stderr
    assert fanned.returncode == 0, output[-3000:]
    assert "scraped 3 queries as tasks on a local Dask cluster" in output, output[-3000:]
    assert "in 5 shard tasks on a local Dask cluster" in output, output[-3000:]  # 36 photos, 8 per shard
    assert output.count("Task run 'cross-validation-fold") >= 3, output[-3000:]

    local = reference.data_dir
    assert _scrape_outcome(dask / "data") == _scrape_outcome(local)
    assert not (dask / "data" / "scrape_parts").exists()
    by_local, by_dask = _vectors(local), _vectors(dask / "data")
    assert len(by_dask) == 2 and set(by_dask) <= set(by_local)  # one store per backbone
    for name, vectors in by_dask.items():
        assert vectors.keys() == by_local[name].keys()
        assert all(np.array_equal(vectors[sha], by_local[name][sha]) for sha in vectors), name

    expected = _champion_metrics(reference.config.tracking.uri)
    got = _champion_metrics(f"sqlite:///{dask / 'mlflow.db'}")
    assert {k: v for k, v in got.items() if k.startswith(("test_", "cv_"))} == {
        k: v for k, v in expected.items() if k.startswith(("test_", "cv_"))
    }
