"""Label issues in the real pipeline: the catalog lists photos of one class under another's query and says
which at /truth.json; the run's k-fold + cleanlab finds them, logs them with a gallery and the k-fold report,
and the next split can leave them out."""

from __future__ import annotations

import pandas as pd
import pytest
import requests
from mlflow import MlflowClient

from catalog import running_catalog
from flows.pipeline import pipeline
from flows.settings import load_run_config
from flows.tasks import left_out
from training.labels.label_issues import read_issues
from training.splitting.split import plan_split, read_split, split_path

pytestmark = pytest.mark.slow


def test_injected_mislabels_are_found_logged_and_can_be_left_out(tmp_path, overrides_for, prefect_harness) -> None:
    overrides = [
        *overrides_for(tmp_path),
        "catalog.products_per_class=30",
        "catalog.mislabelled_per_class=3",
        "train.backbone=efficientnet_lite0",
        "train.weights=imagenet",
        "train.image_size=128",
        "labels.enabled=true",
        "train.epochs=15",
        "train.patience=4",
        "scrape.max_pages=10",
    ]
    config = load_run_config("configs/demo.yaml", overrides)
    with running_catalog(config.catalog, port=0) as catalog:
        truth = requests.get(f"{catalog.base_url}/truth.json", timeout=10).json()["mislabelled"]
        config = load_run_config("configs/demo.yaml", [*overrides, f"scrape.base_url={catalog.base_url}"])
        summary = pipeline(config, config_source="configs/demo.yaml")
    assert len(truth) == 9 and {t["listed_as"] for t in truth} == {"saree", "trousers", "jeans"}

    manifest = pd.read_csv(tmp_path / "data" / "manifest.csv", dtype=str)
    sides = read_split(split_path(config.project.data_dir)).merge(manifest[["path", "image_id"]], on="path")
    examined = {t["image_id"] for t in truth} & set(sides.loc[sides["split"] != "test", "image_id"])
    assert len(examined) >= 5  # the k-fold looks at train and val photos, never test
    issues = read_issues(config.project.data_dir)
    top = set(issues["image_id"].head(len(examined) + 2))
    recall = len(examined & top) / len(examined)
    assert recall >= 0.8, f"found {sorted(examined & top)} of {sorted(examined)} in the top of\n{issues}"
    row = issues[issues["image_id"].isin(examined)].iloc[0]
    drawn = {t["image_id"]: t["drawn_as"] for t in truth}
    assert row["suggested_class"] == drawn[row["image_id"]] and row["asin"]

    run_id = summary["train"]["run_id"]
    assert summary["train"]["labels"]["issues"] == len(issues)
    client = MlflowClient(tracking_uri=config.tracking.uri)
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"label_issues.csv", "label_issues.png", "crossval.md"} <= artifacts
    metrics = client.get_run(run_id).data.metrics
    for model in ("head", "knn", "decision_tree"):
        assert 0 <= metrics[f"cv_{model}_accuracy_mean"] <= 1 and metrics[f"cv_{model}_macro_f1_std"] >= 0
    assert metrics["cv_head_accuracy_mean"] > metrics["cv_decision_tree_accuracy_mean"]

    excluding = load_run_config("configs/demo.yaml", [*overrides, "split.exclude_label_issues=true"])
    kept = set(plan_split(excluding, left_out(excluding))["path"])
    assert not kept & set(issues["path"]) and len(kept) == len(sides) - len(issues)
