"""Watching live traffic: a real server on the reference run's champion logs what it answers; `stj monitor`
and the `stj-monitor` Prefect flow judge a window of that log against the champion's training baseline.
Unshifted traffic (fresh catalog drawings) raises no alert; shifted traffic (the same drawings darker and
turned, and non-garment photos) is found drifting: the webhook is called, the report is written, logged to
MLflow and Prefect, and shown by `/metrics` and `/api/about`. Fixed seeds: the verdicts are deterministic."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import pytest
import requests
from mlflow import MlflowClient
from PIL import Image, ImageEnhance

from catalog.draw import draw_product
from flows.monitor import monitor_flow
from flows.settings import load_run_config
from serving.database import Database
from serving.prediction_log import read_log
from tests.support import artifact_of, wait_until
from training.evaluation.ood_probe import probe_photos

pytestmark = pytest.mark.slow

PHOTOS_PER_CLASS = 16  # 48 unshifted photos, 48 shifted plus the non-garment ones


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _drawings(classes: list[str], side: int) -> list[Image.Image]:
    """Fresh catalog drawings (seeds the catalog's pages never use): the served distribution."""
    return [draw_product(label, 900_000 + seed, side) for label in classes for seed in range(PHOTOS_PER_CLASS)]


def _post(base: str, photos: list[bytes]) -> None:
    for start in range(0, len(photos), 8):
        files = [("images", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos[start : start + 8])]
        answer = requests.post(f"{base}/predict/batch", files=files, timeout=60)
        assert answer.ok, answer.text


def _now() -> str:
    time.sleep(0.01)  # the log's times are to the millisecond: windows must not share one
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def test_monitor_alerts_on_shifted_traffic_and_not_on_unshifted(reference, serve_subprocess, stj, webhook, tmp_path):
    url, received = webhook
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    overrides = [
        *reference.overrides,
        f"serve.database_url={database_url}",
        f"notify.webhook_url={url}",
        f"monitor.report_dir={tmp_path / 'reports'}",
    ]
    config = load_run_config("configs/demo.yaml", overrides)
    side = config.catalog.image_side
    drawings = _drawings(config.class_names, side)
    unshifted = [_jpeg(image) for image in drawings]
    turned_dark = [_jpeg(ImageEnhance.Brightness(image.rotate(90)).enhance(0.35)) for image in drawings]
    others = [photo for photos in probe_photos(per_kind=2).values() for photo in photos][:24]
    logged = lambda: len(read_log(Database(database_url), datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)))  # noqa: E731

    with serve_subprocess(overrides) as server:
        start = _now()
        _post(server.base, unshifted)
        wait_until(lambda: logged() == len(unshifted), "the unshifted photos logged", seconds=30)
        middle = _now()
        _post(server.base, turned_dark + others)
        wait_until(lambda: logged() == len(unshifted) + len(turned_dark) + len(others), "the rest logged", seconds=30)
        end = _now()

        calm = stj(["monitor", "--since", start, "--until", middle, "-c", "configs/demo.yaml"], overrides)
        assert calm.returncode == 0, calm.stderr
        report_line, headline = calm.stdout.strip().splitlines()[-2:]
        assert headline.startswith("stj: drift: no - ") and f"{len(unshifted)} predictions of " in headline
        assert not received  # no alert for unshifted traffic
        path = report_line.removeprefix("stj: report ").split(" (MLflow run")[0]
        assert headline.removeprefix("stj: ") in open(path, encoding="utf-8").read()

        state = monitor_flow(config, since=middle, until=end, return_state=True)  # a real Prefect run
        result = state.result()
        assert result["drifted"] is True and result["alerted"] is True
        assert sum(check["drifted"] for check in result["checks"]) >= 2
        [alert] = received
        assert (
            alert["event"] == "drift"
            and alert["message"] == result["headline"]
            and alert["report"] == result["report_path"]
        )
        assert "embeddings" in [check["name"] for check in result["checks"] if check["drifted"]]
        markdown = artifact_of(str(state.state_details.flow_run_id), "stj-monitor").data
        assert result["headline"] in markdown and "| embeddings |" in markdown

        metrics = requests.get(f"{server.base}/metrics", timeout=30).text
        assert "stj_drift_detected 1.0" in metrics
        assert f"stj_drift_window_predictions {float(len(turned_dark) + len(others))}" in metrics
        about = requests.get(f"{server.base}/api/about", timeout=30).json()["monitor"]
        assert about["headline"] == result["headline"] and about["drifted"] is True

    client = MlflowClient(tracking_uri=config.tracking.uri)
    experiment = client.get_experiment_by_name(config.monitor.experiment)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [run.data.metrics["drifted"] for run in runs] == [0.0, 1.0]
    assert {a.path for a in client.list_artifacts(runs[1].info.run_id)} == {"report.html", "summary.json"}


def test_monitor_says_in_one_line_what_is_wrong(reference, stj, tmp_path) -> None:
    """A bad time, and a champion without a baseline, are one line each (exit 2), no traceback."""
    overrides = [*reference.overrides, f"serve.database_url=sqlite:///{tmp_path / 'serve.db'}"]
    bad = stj(["monitor", "--since", "yesterday", "-c", "configs/demo.yaml"], overrides)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "stj: error: --since 'yesterday': not an ISO 8601 time, e.g. 2026-12-04T09:00"
    )
    backwards = stj(["monitor", "--since", "2026-12-02", "--until", "2026-12-01", "-c", "configs/demo.yaml"], overrides)
    assert backwards.returncode == 2 and "starts (2026-12-02T00:00:00+00:00) at or after its end" in backwards.stderr
    imagenet = stj(["monitor", "-c", "configs/demo.yaml"], [*overrides, "tracking.model_name=imagenet-classifier"])
    assert imagenet.returncode == 2 and "imagenet-classifier version 1 has no traffic baseline" in imagenet.stderr
    assert "Traceback" not in imagenet.stderr
