"""The Prefect tasks and flows: each task's logic through ``.fn()`` (no Prefect server), a flow under the
session's test harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from configs.errors import UserError
from core.aliases import alias_history
from core.manifest import manifest_path, read_manifest
from core.processes import free_port
from flows.notify import post_alert, stage_of
from flows.pipeline import StageFailed, publish_alerts, run_stage, scrape_flow
from flows.tasks import infra_check_task, judge_task, prepare_task, scrape_task, settle_task, train_task
from training.splitting.split import read_split


def test_scrape_task_returns_a_json_report(make_config, catalog_server) -> None:
    config = make_config()
    report = scrape_task.fn(config, catalog_server.base_url)
    json.dumps(report)  # what Prefect stores must serialise
    assert report["per_class"] == {"saree": 12, "trousers": 12, "jeans": 12}
    assert len(read_manifest(manifest_path(config.project.data_dir))) == 36


def test_prepare_task_writes_the_split_file(make_config, catalog_server) -> None:
    config = make_config()
    scrape_task.fn(config, catalog_server.base_url)
    split_file = prepare_task.fn(config)
    assert split_file == Path(config.project.data_dir) / "split.csv"
    assert set(read_split(split_file)["split"]) == {"train", "val", "test"}


@pytest.mark.slow
def test_train_then_publish_tasks(make_config, catalog_server) -> None:
    config = make_config()
    scrape_task.fn(config, catalog_server.base_url)
    result = train_task.fn(config, prepare_task.fn(config), "test")
    json.dumps(result)
    assert 0 <= result["metrics"]["test_accuracy"] <= 1 and result["weights_used"] == "none"
    judged = judge_task.fn(config, result["model_uri"], result["run_id"])
    assert judged["passed_gate"] and judged["version"] == "1" and judged["canary"]
    name, client = config.tracking.model_name, MlflowClient(tracking_uri=config.tracking.uri)
    assert alias_history(client, name) == [] and not client.get_registered_model(name).aliases  # judged, not moved
    check = infra_check_task.fn(config, name, judged["version"], judged["canary"], result["run_id"])
    assert check["passed"], check["reason"]  # a real server, started and stopped by the check
    outcome = settle_task.fn(config, judged, check)
    assert outcome["version"] == "1" and outcome["promoted"] and outcome["metric"] == "test_macro_f1"
    assert outcome["candidate_score"] == result["metrics"]["test_macro_f1"] and outcome["champion_score"] is None
    assert client.get_model_version_by_alias(name, "champion").run_id == result["run_id"]
    metrics = client.get_run(result["run_id"]).data.metrics
    assert metrics["infra_check.passed"] == 1 and metrics["infra_check.agreement"] == 1
    assert metrics["infra_check.canary"] == len(judged["canary"]) and metrics["infra_check.max_prob_diff"] <= 1e-3
    (move,) = alias_history(client, name)
    assert (move.alias, move.from_version, move.to_version, move.kind) == ("champion", None, "1", "gate")
    assert move.by == f"run {result['run_id']}" and move.why == outcome["reason"]


def test_a_failing_stage_is_named() -> None:
    def broken(config):
        raise UserError("need at least 3 images")

    with pytest.raises(StageFailed) as failed:
        run_stage("prepare", broken, None)
    assert str(failed.value) == "stage 'prepare' failed: need at least 3 images"  # what the CLI prints
    assert stage_of(failed.value) == "prepare"
    assert run_stage("scrape", lambda config: {"saved": 1}, None) == {"saved": 1}

    def crashed(config):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full") as failed:
        run_stage("train", crashed, None)
    assert stage_of(failed.value) == "train"  # not a user error: the original exception, with its stage noted


def test_an_alert_is_posted_as_json_and_a_dead_receiver_does_not_raise(webhook) -> None:
    url, received = webhook
    payload = {"event": "model_rejected", "stage": "publish", "message": "below the floor", "mlflow_run_id": "abc"}
    assert post_alert(url, payload, timeout_s=5) is True
    assert received == [payload]
    assert post_alert(None, payload, timeout_s=5) is False
    dead = f"http://127.0.0.1:{free_port()}/hook"
    assert post_alert(dead, payload, timeout_s=2) is False


def test_a_failed_imagenet_infra_check_alerts_as_a_rejected_classifier_does(make_config) -> None:
    config = make_config()
    promoted = {"promoted": True, "version": "3", "reason": "beats the champion"}
    failed = {"passed": False, "reason": "top-1 agreement 96.9% < 99.0%", "metrics": {}}
    imagenet = {"name": "imagenet-classifier", "version": "1", "needs_alias": "true", "infra_check": failed}
    assert publish_alerts(config, promoted) == []
    assert (
        publish_alerts(config, {**promoted, "imagenet": {**imagenet, "infra_check": {**failed, "passed": True}}}) == []
    )
    assert publish_alerts(config, {**promoted, "imagenet": imagenet}) == [
        {"event": "infra_check_failed", "message": "imagenet-classifier version 1 not served: " + failed["reason"]}
    ]
    rejected = publish_alerts(config, {"promoted": False, "version": "4", "reason": "below the floor"})
    assert [a["event"] for a in rejected] == ["model_rejected"] and "version 4 rejected" in rejected[0]["message"]


def test_a_webhook_url_must_be_http(make_config) -> None:
    from configs.loader import ConfigError

    with pytest.raises(ConfigError, match=r"notify\.webhook_url"):
        make_config("notify.webhook_url=ftp://example.org/hook")


def test_scrape_flow_starts_the_catalog_when_none_answers(make_config, prefect_harness) -> None:
    config = make_config(f"scrape.base_url=http://127.0.0.1:{free_port()}")
    report = scrape_flow(config)
    assert report["saved"] == 36 and report["per_class"]["jeans"] == 12


def test_the_split_task_is_cached_until_a_file_it_reads_changes(make_config, catalog_server, prefect_harness) -> None:
    from prefect import flow

    from flows.tasks import prepare_task

    @flow
    def split_once(config):
        return prepare_task(config, return_state=True)

    config = make_config()
    scrape_task.fn(config, catalog_server.base_url)
    first = split_once(config)
    assert first.name == "Completed"
    assert split_once(config).name == "Completed"  # split.csv, one of its inputs, now exists
    assert split_once(config).name == "Cached"  # same config, same files
    split_file = Path(first.result())
    split_file.unlink()
    again = split_once(config)
    assert again.name == "Completed" and split_file.exists()  # a deleted split is made again
    assert split_once(make_config("split.seed=7")).name == "Completed"  # another config
