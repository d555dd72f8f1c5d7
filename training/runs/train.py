"""The train stage: embed (cached), fit the head, optionally fine-tune, evaluate, compare with baselines, and
record everything in one MLflow run (baselines as child runs; a sweep is ``training.runs.sweep``).

Config keys: everything under ``train`` and ``tracking``, ``project.seed``, ``project.data_dir``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow

from configs.schema import Config
from core.model_input import load_images
from training.embedding.features import Features, load_features
from training.fitting.candidate import Candidate, train_candidate
from training.runs.track import (
    configure_tracking,
    log_baselines,
    log_candidate,
    log_context,
    log_model,
    log_ood,
    log_plots,
    log_speed,
    run_title,
    summary_table,
    tracked_run,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What the train stage hands to publishing."""

    run_id: str
    model_uri: str
    backbone: str
    val_loss: float  # the best validation loss: how siblings are compared (never the test split)
    metrics: dict[str, float]
    weights_used: str
    runtime: str
    best_epoch: int
    seconds: float
    embeddings: tuple[str, str] = ("", "")  # the features' store (folder, key): the label check reads them there


def record_run(
    config: Config,
    features: Features,
    candidate: Candidate,
    *,
    run_id: str,
    config_source: str,
    report_file: Path | None,
    started: float,
    kind: str = "",
) -> TrainResult:
    """Complete the active run with the chosen candidate: name, metrics, context, plots, timing, baselines and
    the model (the ending ``train`` and ``sweep`` share; ``kind`` prefixes the run's name)."""
    photos = sum(features.count(side) for side in ("train", "val", "test"))
    mlflow.set_tag("mlflow.runName", kind + run_title(features.base.backbone.name, candidate.runtime.precision, photos))
    log_candidate(config, candidate)
    log_context(config=config, features=features, candidate=candidate, source=config_source, report=report_file)
    mlflow.log_text(summary_table(config, features, candidate), "summary.md")
    log_plots(features, candidate, config.class_names)
    log_ood(config, features, candidate)
    pixels = load_images(features.part_paths("test")[:20], config.train.image_size)
    head_ms = log_speed(features, candidate, pixels)
    log_baselines(config=config, features=features, candidate=candidate, head_ms=head_ms)
    log.info("logging the model to MLflow (%s, %s)", features.base.backbone.name, candidate.runtime.name)
    logging_started = time.monotonic()
    model_uri = log_model(config=config, features=features, candidate=candidate)
    log.info("model logged in %.1f s: %s", time.monotonic() - logging_started, model_uri)
    seconds = round(time.monotonic() - started, 2)
    mlflow.log_metric("train_stage_seconds", seconds)
    log.info(
        "run %s: test accuracy %.3f, macro F1 %.3f, weights %s",
        run_id,
        candidate.metrics["test_accuracy"],
        candidate.metrics["test_macro_f1"],
        features.base.weights.used,
    )
    return TrainResult(
        run_id=run_id,
        model_uri=model_uri,
        backbone=features.base.backbone.name,
        val_loss=candidate.val_loss,
        metrics=candidate.metrics,
        weights_used=features.base.weights.used,
        runtime=candidate.runtime.name,
        best_epoch=candidate.best_epoch,
        seconds=seconds,
        embeddings=(str(features.base.folder), features.base.embedding_key()),
    )


def train(config: Config, split_file: Path, config_source: str = "", report_file: Path | None = None) -> TrainResult:
    """Run the train stage: one candidate, one MLflow run.

    Args:
        config: the STJ config.
        split_file: the prepare stage's split file (paths relative to ``project.data_dir``).
        config_source: the config file's name, recorded as a tag.
        report_file: the scrape report to attach to the run, if any.

    Returns:
        The MLflow run id, the logged model's URI and the test metrics.
    """
    started = time.monotonic()
    features = load_features(config, split_file)
    configure_tracking(config.tracking)
    with tracked_run(run_name=f"{features.base.backbone.name} (training)") as run:
        candidate = train_candidate(config, features)
        return record_run(
            config,
            features,
            candidate,
            run_id=run.info.run_id,
            config_source=config_source,
            report_file=report_file,
            started=started,
        )
