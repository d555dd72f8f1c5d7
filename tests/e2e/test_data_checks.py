"""Data validation in the real pipeline: an injected anomaly stops it before training, with no MLflow run
and no model version; a clean first run passes and becomes the baseline of the next."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from core.processes import free_port
from flows.pipeline import StageFailed, pipeline
from flows.settings import load_run_config
from tests.support import artifact_of

pytestmark = pytest.mark.slow


def test_one_class_of_mostly_fake_photos_stops_the_pipeline_before_training(
    tmp_path, overrides_for, prefect_harness, webhook
) -> None:
    url, alerts = webhook
    overrides = [
        *overrides_for(tmp_path),
        f"notify.webhook_url={url}",
        f"scrape.base_url=http://127.0.0.1:{free_port()}",
        "catalog.faults.fake_image_rate=0.9",
        "catalog.faults.photo_fault_classes=[jeans]",
    ]
    config = load_run_config("configs/demo.yaml", overrides)
    state = pipeline(config, config_source="configs/demo.yaml", return_state=True)
    with pytest.raises(StageFailed) as failure:
        state.result()
    message = str(failure.value)
    assert message.startswith("stage 'validate' failed: data check max_rejected_rate failed for jeans: ")
    assert "\n" not in message and "limit 50%" in message
    stats = json.loads((tmp_path / "data" / "data_stats.json").read_text())
    assert stats["classes"]["jeans"]["rejected_rate"] > 0.5 >= stats["classes"]["saree"]["rejected_rate"]
    assert "max_rejected_rate" in (tmp_path / "data" / "data_validation.md").read_text()
    assert (
        not (tmp_path / "data" / "split.csv").exists() and not (tmp_path / "data" / "data_stats.baseline.json").exists()
    )
    client = MlflowClient(tracking_uri=config.tracking.uri)
    assert client.search_registered_models() == []
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []

    (alert,) = alerts  # the flow's failure hook
    assert alert["event"] == "stage_failed" and alert["flow"] == "stj-pipeline" and alert["stage"] == "validate"
    assert alert["message"] == message and alert["mlflow_run_id"] is None and alert["flow_run"]["id"]
    report = artifact_of(str(state.state_details.flow_run_id), "stj-data-validation")  # the validate stage's
    assert report.flow_run_id is not None and "`max_rejected_rate` (jeans)" in report.data
