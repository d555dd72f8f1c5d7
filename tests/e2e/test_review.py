"""Corrections flow back: on a real server with the reference run's champion, a user flags a photo the catalog
lists under the wrong class (its truth says so) and sends the photo; an admin made by `stj admin grant` sees the
flag on /review beside the champion's label issues and decides "relabel"; the next run (the reference run's
data and embeddings copied, the catalog now listing that photo) trains the photo under its new class and logs
the overrides' digest in its dataset version."""

from __future__ import annotations

import shutil

import mlflow
import pandas as pd
import requests
from mlflow import MlflowClient

from catalog import running_catalog
from core.images import clean_image
from core.label_overrides import OVERRIDES_NAME, overrides_digest, read_overrides
from core.manifest import manifest_path, read_manifest
from core.processes import free_port
from flows.pipeline import pipeline
from flows.settings import load_run_config
from tests.support import PASSWORD, REFERENCE_EXTRAS
from training.splitting.split import position_of, read_split, side_at, split_path


def _mislabelled_photo(config) -> dict:
    """One photo the catalog lists under another class than it shows, that the next split puts in training (its
    side is a hash of its SHA-256), with its bytes as served and its SHA-256 as the scraper keeps it."""
    with running_catalog(config.catalog, port=0) as catalog:
        truth = requests.get(f"{catalog.base_url}/truth.json", timeout=30).json()["mislabelled"]
        for listing in truth:
            served = requests.get(f"{catalog.base_url}/images/I/{listing['image_id']}.jpg", timeout=30).content
            sha256 = clean_image(served, config.scrape.min_side).sha256
            side = side_at(position_of(sha256, config.split.seed), config.split.test_size, config.split.val_size)
            if side == "train":
                return {**listing, "photo": served, "sha256": sha256}
    raise AssertionError(f"none of the catalog's mislabelled photos lands in training: {truth}")


def test_a_flagged_mislabelled_photo_relabelled_trains_under_its_new_class(
    reference, serve_subprocess, stj, overrides_for, tmp_path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    served_with = [*reference.overrides, "serve.auth=optional", f"serve.database_url={database_url}"]
    rerun = [
        *overrides_for(tmp_path),
        *REFERENCE_EXTRAS,
        "catalog.mislabelled_per_class=1",  # the next scrape finds one photo per class listed as another
        "labels.enabled=false",
        "train.compare_backbones=[]",
        "tracking.imagenet_model=",
        f"serve.database_url={database_url}",
        f"scrape.base_url=http://127.0.0.1:{free_port()}",
    ]
    config = load_run_config("configs/demo.yaml", rerun)
    shutil.copytree(reference.data_dir, config.project.data_dir)  # photos, manifest, split, embeddings
    wrong = _mislabelled_photo(config)

    with serve_subprocess(served_with) as server:
        base, origin = server.base, {"Origin": server.base}
        user = requests.Session()
        signup = user.post(f"{base}/api/signup", json={"email": "ann@example.com", "password": PASSWORD},
                           headers=origin, timeout=30)  # fmt: skip
        assert signup.status_code == 201, signup.text
        answer = user.post(f"{base}/predict", files={"image": wrong["photo"]}, headers=origin, timeout=60).json()
        flag = {"prediction_id": answer["prediction_id"], "class": wrong["drawn_as"]}
        flagged = user.post(f"{base}/api/feedback", data=flag, files={"image": wrong["photo"]}, headers=origin,
                            timeout=30)  # fmt: skip
        assert flagged.status_code == 201 and flagged.json()["sha256"] == wrong["sha256"], flagged.text
        assert user.get(f"{base}/api/review", timeout=30).status_code == 403  # not an admin yet

        granted = stj(["admin", "grant", "ann@example.com", "-c", "configs/demo.yaml"], served_with)
        assert granted.returncode == 0, granted.stderr
        listing = user.get(f"{base}/api/review", timeout=30).json()
        assert [f["sha256"] for f in listing["flags"]] == [wrong["sha256"]] and listing["flags"][0]["has_photo"]
        tracking = reference.config.tracking.uri  # the champion's own run's file (later runs rewrite the data's)
        champion = MlflowClient(tracking_uri=tracking).get_model_version_by_alias("stj-classifier", "champion")
        logged = mlflow.artifacts.download_artifacts(
            run_id=champion.run_id, artifact_path="label_issues.csv", tracking_uri=tracking, dst_path=str(tmp_path)
        )
        issues = pd.read_csv(logged, dtype=str)
        assert [i["sha256"] for i in listing["label_issues"]] == list(issues["sha256"])  # the champion's run's
        assert (
            user.get(f"{base}/api/review/photo/{wrong['sha256']}", timeout=30).headers["Content-Type"] == "image/jpeg"
        )
        if len(issues):  # a label issue's thumbnail comes from the data folder
            photo = user.get(f"{base}/api/review/photo/{issues['sha256'].iloc[0]}", timeout=30)
            assert photo.status_code == 200, photo.text
        decision = {"sha256": wrong["sha256"], "decision": "relabel", "class": wrong["drawn_as"]}
        decided = user.post(f"{base}/api/review/decisions", json=decision, headers=origin, timeout=30)
        assert decided.status_code == 201, decided.text

    summary = pipeline(config, config_source="configs/demo.yaml")
    manifest = read_manifest(manifest_path(config.project.data_dir)).set_index("sha256")
    assert manifest.loc[wrong["sha256"], "class"] == wrong["listed_as"]  # scraped as the catalog lists it
    split = read_split(split_path(config.project.data_dir)).set_index("sha256")
    assert (split.loc[wrong["sha256"], "class"], split.loc[wrong["sha256"], "split"]) == (wrong["drawn_as"], "train")

    overrides = read_overrides(config.project.data_dir)
    run = MlflowClient(tracking_uri=config.tracking.uri).get_run(summary["train"]["run_id"])
    assert run.data.tags["dataset.overrides_digest"] == overrides_digest(overrides) != "none"
    assert run.data.tags["dataset.version"].endswith(f"+overrides:{overrides_digest(overrides)}")
    logged = MlflowClient(tracking_uri=config.tracking.uri).list_artifacts(run.info.run_id)
    assert OVERRIDES_NAME in {a.path for a in logged}
