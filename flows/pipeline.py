"""The Prefect flows: one per stage, and the pipeline that runs them in sequence. Thin glue over
``flows.tasks``; stages hand off through files (manifest, split file) and MLflow (the logged model), so any
stage can be re-run on its own. A config with a ``catalog`` section scrapes the local catalog.
"""

# No ``from __future__ import annotations`` here: a served deployment pickles these flows by value, keeping
# only the globals their bodies use, and Prefect then cannot resolve a string annotation like "RunConfig"
# when it validates the parameters (every scheduled run failed before it started).

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment, flow_run

from catalog.server import catalog_for
from configs.errors import UserError
from flows.fanout import embed_in_shards, fans_out, folds_as_tasks, on_configured_runner, scrape_per_query
from flows.interrupts import entering, leaving
from flows.logs import adopt_command_settings
from flows.notify import STAGE_NOTE, alert_on_failure
from flows.settings import RunConfig
from flows.tasks import (
    accept_task,
    alert_task,
    choose_task,
    export_review_task,
    imagenet_alias_task,
    infra_check_task,
    judge_task,
    label_issues_task,
    prepare_task,
    publish_imagenet_task,
    scrape_task,
    settle_task,
    summary_task,
    sweep_task,
    train_task,
    validate_task,
)
from training.runs.compare import backbone_configs


@flow(name="stj-scrape")
def scrape_flow(config: RunConfig) -> dict[str, Any]:
    """Scrape; with a ``catalog`` section, against the local catalog (started here if not running)."""
    logger = get_run_logger()
    run = scrape_per_query if fans_out(config) else scrape_task
    if config.catalog is None:
        report = run(config, None)
    else:
        with catalog_for(config.catalog, config.scrape.base_url) as base_url:
            report = run(config, base_url)
    logger.info(
        "scraped: %s saved, %s per class, %s rejected", report["saved"], report["per_class"], report["rejected"]
    )
    return report


@flow(name="stj-prepare")
def prepare_flow(config: RunConfig, plan: Path | None = None) -> Path:
    """Split the manifest 80/20 (validation carved from the 80): adopt the ``plan`` validate made, if given;
    without one, the review's decisions are exported first (as validate does)."""
    if plan is None:
        _export_review(config)
    return prepare_task(config, plan)


@flow(name="stj-validate")
def validate_flow(config: RunConfig) -> tuple[dict[str, Any], Path | None]:
    """Check the data before training (the review's decisions exported first, so the split applies them):
    floors always, changes against the last good run; the statistics and the planned split."""
    _export_review(config)
    return validate_task(config)


def _export_review(config: RunConfig) -> None:
    exported = export_review_task(config)
    if exported and exported["decisions"]:
        get_run_logger().info(
            "review: %d decision(s) applied as label overrides, %d upload(s) added to the data set",
            exported["decisions"],
            exported["added"],
        )


@flow(name="stj-train")
def train_flow(
    config: RunConfig, split_file: Path, config_source: str = "", grid_points: list[list[str]] | None = None
) -> dict[str, Any]:
    """Train and record one run per backbone (or a sweep of child runs); the best by validation is the
    candidate, returned with its siblings and, on the Dask runner, what the shard tasks embedded and in how
    many seconds (``embedded_in_shards``; ``None`` otherwise)."""
    points = [config] if grid_points else backbone_configs(config)
    # embedding shards on the Dask runner; the train tasks then find them cached
    sharded = [embed_in_shards(point, split_file) for point in points] if fans_out(config) else []
    if grid_points:
        runs = [sweep_task(config=config, grid_points=grid_points, split_file=split_file, config_source=config_source)]
    else:
        runs = [train_task(point, split_file, config_source) for point in points]
    for run in runs:
        get_run_logger().info(
            "run %s (%s): test accuracy %.3f, macro F1 %.3f, val loss %.4f, weights %s, runtime %s",
            run["run_id"],
            run["backbone"],
            run["metrics"]["test_accuracy"],
            run["metrics"]["test_macro_f1"],
            run["val_loss"],
            run["weights_used"],
            run["runtime"],
        )
    chosen = choose_task(config, runs)
    if config.labels.enabled:
        point = next(p for p in points if p.train.backbone == chosen["backbone"])
        embeddings = tuple(chosen["embeddings"])  # the candidate's features, handed on by the train stage
        folds = folds_as_tasks(point, split_file, embeddings) if fans_out(config) else None
        chosen["labels"] = label_issues_task(point, split_file, chosen["run_id"], embeddings, folds)
    embedded_in_shards = {k: sum(s[k] for s in sharded) for k in ("embedded", "seconds")} if sharded else None
    return {**chosen, "siblings": runs, "embedded_in_shards": embedded_in_shards}


@flow(name="stj-publish")
def publish_flow(config: RunConfig, model_uri: str, run_id: str) -> dict[str, Any]:
    """Register the run's model; the quality gate judges it, the infra check serves it in a real server, and
    the alias moves only if both pass. The ImageNet model is registered beside it the first time its
    checkpoint is seen, and goes through the same check before its alias moves."""
    judged = judge_task(config, model_uri, run_id)
    check = None
    if judged["passed_gate"] and config.release.infra_check:
        check = infra_check_task(config, config.tracking.model_name, judged["version"], judged["canary"], run_id)
    outcome = settle_task(config, judged, check)
    get_run_logger().info(
        "%s version %s %s: %s",
        config.tracking.model_name,
        outcome["version"],
        f"is now @{config.tracking.alias}" if outcome["promoted"] else "was rejected",
        outcome["reason"],
    )
    return {**outcome, "imagenet": _publish_imagenet(config, judged["canary"])}


def _publish_imagenet(config: RunConfig, canary: list[str]) -> dict[str, Any] | None:
    published = publish_imagenet_task(config)
    if published is None or published["needs_alias"] != "true":
        return published
    if config.release.infra_check:
        check = infra_check_task(config, published["name"], published["version"], canary, None)
        if not check["passed"]:
            get_run_logger().warning(
                "%s version %s not served: %s", published["name"], published["version"], check["reason"]
            )
            return {**published, "infra_check": check}
    imagenet_alias_task(config, published)
    return {**published, "needs_alias": "false"}


class StageFailed(UserError):
    """A pipeline stage failed for a reason the user can fix; the message names the stage."""


def run_stage(name: str, stage_flow, *args: Any, seconds: dict[str, float] | None = None) -> Any:
    """Run one stage; a user-fixable failure becomes :class:`StageFailed` naming the stage, and any failure
    carries the stage's name in its notes (for the alert). An interrupt leaves the stage marked as running,
    so the command can say which one it stopped. ``seconds``: where its wall time is recorded, by name."""
    entering(name)
    started = time.monotonic()
    try:
        result = stage_flow(*args)
    except UserError as exc:
        failed = StageFailed(f"stage '{name}' failed: {exc}")
        failed.add_note(f"{STAGE_NOTE}{name}")
        raise failed from exc
    except Exception as exc:
        exc.add_note(f"{STAGE_NOTE}{name}")
        raise
    leaving(name)
    if seconds is not None:
        seconds[name] = round(time.monotonic() - started, 2)
    return result


def publish_alerts(config: RunConfig, publish: dict[str, Any]) -> list[dict[str, str]]:
    """The alerts a publish outcome calls for: the classifier rejected (by the gate or the infra check), and
    the ImageNet model's infra check failed (its alias did not move)."""
    alerts = []
    if not publish["promoted"]:
        message = f"{config.tracking.model_name} version {publish['version']} rejected: {publish['reason']}"
        alerts.append({"event": "model_rejected", "message": message})
    imagenet = publish.get("imagenet") or {}
    check = imagenet.get("infra_check")
    if check is not None and not check["passed"]:
        message = f"{imagenet['name']} version {imagenet['version']} not served: {check['reason']}"
        alerts.append({"event": "infra_check_failed", "message": message})
    return alerts


def finish(config: RunConfig, result: dict[str, Any]) -> dict[str, Any]:
    """Publish the run's summary artifacts and alert on what :func:`publish_alerts` finds."""
    summary_task(config, result)
    for alert in publish_alerts(config, result["publish"]):
        alert_task(
            config,
            {
                "event": alert["event"],
                "flow": flow_run.flow_name,
                "flow_run": {"id": str(flow_run.id), "name": flow_run.name},
                "stage": "publish",
                "message": alert["message"],
                "mlflow_run_id": result["train"]["run_id"],
            },
        )
    return result


@flow(name="stj-pipeline", on_failure=[alert_on_failure])
def pipeline(config: RunConfig, config_source: str = "") -> dict[str, Any]:
    """Scrape -> validate -> prepare -> train -> publish; a failed stage stops the ones after it."""
    if deployment.id is not None:  # a scheduled run: its process was started by Prefect, not by `stj`
        adopt_command_settings()
    seconds: dict[str, float] = {}
    report = run_stage("scrape", on_configured_runner(scrape_flow, config), config, seconds=seconds)
    stats, plan = run_stage("validate", validate_flow, config, seconds=seconds)
    split_file = run_stage("prepare", prepare_flow, config, plan, seconds=seconds)  # validate's plan: planned once
    training = on_configured_runner(train_flow, config)
    result = run_stage("train", training, config, split_file, config_source, seconds=seconds)
    outcome = run_stage("publish", publish_flow, config, result["model_uri"], result["run_id"], seconds=seconds)
    accept_task(config)
    return finish(
        config, {"scrape": report, "data": stats, "train": result, "publish": outcome, "stage_seconds": seconds}
    )


@flow(name="stj-train-only", on_failure=[alert_on_failure])
def train_pipeline(
    config: RunConfig, config_source: str = "", grid_points: list[list[str]] | None = None
) -> dict[str, Any]:
    """Prepare -> train (or sweep) -> publish on the data already scraped."""
    split_file = run_stage("prepare", prepare_flow, config)
    result = run_stage(
        "train", on_configured_runner(train_flow, config), config, split_file, config_source, grid_points
    )
    outcome = run_stage("publish", publish_flow, config, result["model_uri"], result["run_id"])
    return finish(config, {"train": result, "publish": outcome})
