"""The train stage: embed (cached), fit the head, evaluate on the test split, record everything in MLflow.

Config keys: everything under ``train`` and ``tracking``, ``project.seed``, ``project.data_dir``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from configs.schema import Config
from training.embed import EmbeddingCache, cache_key, embed_files
from training.evaluate import classification_metrics, confusion_matrix_png
from training.fit import fit_head
from training.images import load_images
from training.model import (
    BACKBONE,
    PREPROCESS_VERSION,
    build_base,
    build_classifier,
    build_embedder,
    weights_fingerprint,
)
from training.runtime import make_runtime
from training.split import read_split
from training.track import EpochMetrics, configure_tracking, flatten_config, log_classifier
from training.weights import resolve_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What the train stage hands to publishing."""

    run_id: str
    model_uri: str
    metrics: dict[str, float]
    weights_used: str
    runtime: str
    best_epoch: int
    seconds: float


def train(config: Config, split_file: Path, config_source: str = "", report_file: Path | None = None) -> TrainResult:
    """Run the train stage.

    Args:
        config: the STJ config.
        split_file: the prepare stage's split file (paths relative to ``project.data_dir``).
        config_source: the config file's name, recorded as a tag.
        report_file: the scrape report to attach to the run, if any.

    Returns:
        The MLflow run id, the logged model's URI and the test metrics.
    """
    started = time.monotonic()
    tc, data_dir = config.train, Path(config.project.data_dir)
    class_names = config.class_names
    split = read_split(split_file)
    split = split[split["class"].isin(class_names)]
    labels = split["class"].map({c: i for i, c in enumerate(class_names)}).to_numpy()
    paths = [data_dir / p for p in split["path"]]

    choice = resolve_weights(tc.weights, tc.weights_fallback)
    base = build_base(tc.image_size, choice.keras_arg, config.project.seed)
    embedder = build_embedder(base, tc.image_size)
    runtime = make_runtime(embedder, tc.runtime)
    key = cache_key(BACKBONE, weights_fingerprint(base), tc.image_size, f"{PREPROCESS_VERSION}|{runtime.name}")
    cache = EmbeddingCache(data_dir / "embeddings", key)
    embed_start = time.monotonic()
    features, embedded = embed_files(runtime, paths, list(split["sha256"]), cache, tc.image_size, tc.embed_batch_size)
    embed_seconds = time.monotonic() - embed_start

    parts = {name: (split["split"] == name).to_numpy() for name in ("train", "val", "test")}
    configure_tracking(config.tracking)
    with mlflow.start_run(run_name=f"resnet50-{choice.used}") as run:
        mlflow.log_params(flatten_config(config))
        mlflow.set_tags(
            {
                "weights.requested": choice.requested,
                "weights.used": choice.used,
                "weights.fell_back": str(choice.fell_back).lower(),
                "runtime": runtime.name,
                "config_file": config_source,
                "embedding_cache": key,
            }
        )
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
        mlflow.log_artifact(str(split_file))
        if report_file is not None and report_file.exists():
            mlflow.log_dict(json.loads(report_file.read_text()), "scrape_report.json")
        mlflow.log_metrics(
            {
                "n_train": int(parts["train"].sum()),
                "n_val": int(parts["val"].sum()),
                "n_test": int(parts["test"].sum()),
                "embed_images": embedded,
                "embed_seconds": round(embed_seconds, 3),
            }
        )
        head, history, best_epoch = fit_head(
            (features[parts["train"]], labels[parts["train"]]),
            (features[parts["val"]], labels[parts["val"]]),
            len(class_names),
            tc,
            data_dir / "checkpoints" / run.info.run_id,
            config.project.seed,
            callbacks=[EpochMetrics()],
        )
        probs = head.predict(features[parts["test"]], verbose=0)
        y_true, y_pred = labels[parts["test"]], probs.argmax(axis=1)
        metrics = classification_metrics(y_true, y_pred, class_names)
        mlflow.log_metrics({**metrics, "best_epoch": best_epoch, "epochs_run": len(history["loss"])})
        mlflow.log_image(_png_to_array(confusion_matrix_png(y_true, y_pred, class_names)), "confusion_matrix.png")
        classifier = build_classifier(embedder, head)
        example = load_images(paths[:1], tc.image_size)
        model_uri = log_classifier(classifier, class_names, tc.image_size, example)
        seconds = round(time.monotonic() - started, 2)
        mlflow.log_metric("train_stage_seconds", seconds)
    log.info("trained run %s: test accuracy %.3f, weights %s", run.info.run_id, metrics["test_accuracy"], choice.used)
    return TrainResult(run.info.run_id, model_uri, metrics, choice.used, runtime.name, best_epoch, seconds)


def _png_to_array(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
