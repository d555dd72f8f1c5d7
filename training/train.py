"""The train stage: embed (cached), fit the head, optionally fine-tune, evaluate, compare with baselines, and
record everything in one MLflow run (baselines and sweep points as child runs).

Config keys: everything under ``train`` and ``tracking``, ``project.seed``, ``project.data_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd

from configs.schema import Config
from scraper.manifest import manifest_path, read_manifest
from training.baselines import ModelScore, comparison_table, ms_per_image, score_baselines
from training.embed import EmbeddingCache, cache_key, embed_files
from training.evaluate import classification_metrics, confusion_matrix_png, misclassified_png, roc_auc, roc_curves_png
from training.finetune import fine_tune
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
from training.runtime import Runtime, int8_runtime, make_runtime, resolve_precision
from training.split import read_split
from training.track import configure_tracking, flatten_config, log_classifier, log_openvino_embedder
from training.weights import WeightsChoice, resolve_weights

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


@dataclass
class Features:
    """The split with its cached embeddings and the frozen network that produced them."""

    split: pd.DataFrame
    labels: np.ndarray
    paths: list[Path]
    vectors: np.ndarray
    parts: dict[str, np.ndarray]
    choice: WeightsChoice
    base: keras.Model
    embedder: keras.Model
    runtime_name: str
    base_key: str
    cache: str
    cache_dir: Path
    embedded: int = 0
    embed_seconds: float = 0.0
    int8: dict | None = None
    _runtime: Runtime | None = field(default=None, repr=False)

    def runtime(self) -> Runtime:
        """The embedding runtime, built on first use (a warm cache never needs it for embedding)."""
        if self._runtime is None:
            self._runtime = make_runtime(self.embedder, self.runtime_name, self.ir_file)
        return self._runtime

    @property
    def ir_file(self) -> Path:
        """The embedder converted for OpenVINO (FP32), kept for the next run."""
        return self.cache_dir / f"{self.base_key}.xml"

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of ``train``, ``val`` or ``test``."""
        return self.vectors[self.parts[name]], self.labels[self.parts[name]]


def load_features(config: Config, split_file: Path, show_progress: bool = True) -> Features:
    """Resolve weights, build the frozen base, and embed every image of the split (cached on disk)."""
    tc, data_dir = config.train, Path(config.project.data_dir)
    split = read_split(split_file)
    split = split[split["class"].isin(config.class_names)].reset_index(drop=True)
    labels = split["class"].map({c: i for i, c in enumerate(config.class_names)}).to_numpy()
    paths = [data_dir / p for p in split["path"]]
    choice = resolve_weights(tc.weights, tc.weights_fallback)
    base = build_base(tc.image_size, choice.keras_arg, config.project.seed)
    embedder = build_embedder(base, tc.image_size)
    runtime_name = resolve_precision(tc.runtime, tc.precision)  # asks OpenVINO about the CPU: once per run
    weights_fp = weights_fingerprint(base)
    base_key = cache_key(BACKBONE, weights_fp, tc.image_size, PREPROCESS_VERSION)
    cache_dir = data_dir / "embeddings"
    started = time.monotonic()  # embedding time includes a first run's int8 calibration
    runtime, int8 = None, None
    if runtime_name == "openvino-int8":
        runtime, int8 = _int8_embedder(embedder, split, data_dir, tc.image_size, tc.int8_calibration_images, base_key)
        if runtime is None:
            runtime_name = resolve_precision(tc.runtime, tc.precision, int8_ok=False)
    calibration = int8["calibration"] if runtime is not None else ""
    key = cache_key(
        BACKBONE, weights_fp, tc.image_size, f"{PREPROCESS_VERSION}|{runtime_name}|calibration={calibration}"
    )
    cache = EmbeddingCache(cache_dir, key)
    features = Features(
        split,
        labels,
        paths,
        np.zeros(0),
        {},
        choice,
        base,
        embedder,
        runtime_name,
        base_key,
        key,
        cache_dir,
        int8=int8,
        _runtime=runtime,
    )
    if cache.missing(list(split["sha256"])):
        vectors, embedded = embed_files(
            features.runtime(),
            paths,
            list(split["sha256"]),
            cache,
            tc.image_size,
            tc.embed_batch_size,
            show_progress=show_progress,
        )
    else:
        vectors, embedded = cache.lookup(list(split["sha256"])), 0
    features.vectors, features.embedded = vectors, embedded
    features.embed_seconds = time.monotonic() - started
    features.parts = {name: (split["split"] == name).to_numpy() for name in ("train", "val", "test")}
    return features


def _int8_embedder(
    embedder: keras.Model, split: pd.DataFrame, data_dir: Path, image_size: int, n: int, base_key: str
) -> tuple[Runtime | None, dict]:
    """The int8 embedder (``None`` if refused) and its record; a first call calibrates on ``n`` training
    photos (lowest sha256 first, so the choice is reproducible) and checks it on the next ``n``."""
    train_paths = [data_dir / p for p in split[split["split"] == "train"].sort_values("sha256")["path"]]

    def images() -> tuple[np.ndarray, np.ndarray]:
        pixels = load_images(train_paths[: 2 * n], image_size)
        half = min(n, len(pixels) // 2)
        return pixels[:half], pixels[half:]

    return int8_runtime(embedder, data_dir / "embeddings", base_key, images)


def _code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _log_dataset(config: Config, split: pd.DataFrame) -> None:
    """Log the manifest joined with the split as an MLflow dataset (its digest identifies the data)."""
    manifest = read_manifest(manifest_path(config.project.data_dir))
    frame = split.merge(manifest[["path", "asin", "image_id", "query"]], on="path", how="left")
    dataset = mlflow.data.from_pandas(
        frame, source=str(manifest_path(config.project.data_dir)), name="stj-products", targets="class"
    )
    mlflow.log_input(dataset, context="training")


def _log_png(png: bytes | None, name: str) -> None:
    if png is not None:
        import io

        from PIL import Image

        mlflow.log_image(Image.open(io.BytesIO(png)), name)


def _log_history(history: dict[str, list[float]], prefix: str = "") -> None:
    for key, values in history.items():
        name = key if key.startswith("val_") else f"train_{key}"
        for step, value in enumerate(values, start=1):
            mlflow.log_metric(f"{prefix}{name}", value, step=step)


@dataclass
class Candidate:
    """One trained head (and possibly fine-tuned network) with its test results."""

    head: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    probs: np.ndarray
    metrics: dict[str, float]
    fit_seconds: float = 0.0
    classifier: keras.Model | None = None
    finetune_history: dict[str, list[float]] | None = None

    @property
    def val_loss(self) -> float:
        return min(self.history["val_loss"])


def train_candidate(config: Config, features: Features) -> Candidate:
    """Fit the head on cached features (resumable), fine-tune if configured, and score the test split."""
    tc = config.train
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                features.cache,
                tc.model_dump(mode="json"),
                config.project.seed,
                hashlib.sha256(features.split.to_csv(index=False).encode()).hexdigest(),
            ]
        ).encode()
    ).hexdigest()[:16]
    fit_started = time.monotonic()
    head, history, best_epoch = fit_head(
        features.part("train"),
        features.part("val"),
        len(config.class_names),
        tc,
        Path(config.project.data_dir) / "checkpoints" / fingerprint,
        config.project.seed,
    )
    fit_seconds = time.monotonic() - fit_started
    test_x, test_y = features.part("test")
    probs = head.predict(test_x, verbose=0)
    candidate = Candidate(head, history, best_epoch, probs, {}, fit_seconds=fit_seconds)
    if tc.finetune.enabled and features.choice.keras_arg is not None:
        classifier = build_classifier(features.embedder, head)
        images = {
            name: load_images(
                [p for p, m in zip(features.paths, features.parts[name], strict=True) if m], tc.image_size
            )
            for name in ("train", "val", "test")
        }
        candidate.finetune_history = fine_tune(
            classifier,
            features.base,
            (images["train"], features.part("train")[1]),
            (images["val"], features.part("val")[1]),
            len(config.class_names),
            tc.finetune,
            config.project.seed,
        )
        candidate.classifier = classifier
        candidate.probs = classifier.predict(images["test"], verbose=0)  # the base changed: use the whole graph
    candidate.metrics = {
        **classification_metrics(test_y, candidate.probs.argmax(axis=1), config.class_names),
        **roc_auc(test_y, candidate.probs, config.class_names),
    }
    return candidate


def _log_candidate(config: Config, candidate: Candidate) -> None:
    mlflow.log_params(flatten_config(config))
    _log_history(candidate.history)
    if candidate.finetune_history:
        _log_history(candidate.finetune_history, "finetune_")
    mlflow.log_metrics(
        {
            **candidate.metrics,
            "best_epoch": candidate.best_epoch,
            "epochs_run": len(candidate.history["loss"]),
            "best_val_loss": candidate.val_loss,
            "fit_seconds": round(candidate.fit_seconds, 3),
        }
    )


def _finish_run(
    config: Config, features: Features, candidate: Candidate, config_source: str, report_file: Path | None
) -> str:
    """Log plots, baselines (child runs), timing and the model to the active run; returns the model URI."""
    tc = config.train
    test_x, test_y = features.part("test")
    test_paths = [p for p, m in zip(features.paths, features.parts["test"], strict=True) if m]
    mlflow.set_tags(
        {
            "weights.requested": features.choice.requested,
            "weights.used": features.choice.used,
            "weights.fell_back": str(features.choice.fell_back).lower(),
            "runtime": features.runtime_name,
            **({f"int8.{k}": str(v) for k, v in features.int8.items()} if features.int8 else {}),
            "config_file": config_source,
            "code_version": _code_version(),
            "embedding_cache": features.cache,
            "finetune": "ran"
            if candidate.finetune_history
            else ("skipped: weights are none" if tc.finetune.enabled else "off"),
        }
    )
    _log_dataset(config, features.split)
    mlflow.log_dict(config.model_dump(mode="json"), "config.json")
    mlflow.log_text(features.split.to_csv(index=False), "split.csv")
    if report_file is not None and report_file.exists():
        mlflow.log_dict(json.loads(report_file.read_text()), "scrape_report.json")
    y_pred = candidate.probs.argmax(axis=1)
    _log_png(confusion_matrix_png(test_y, y_pred, config.class_names), "confusion_matrix.png")
    _log_png(roc_curves_png(test_y, candidate.probs, config.class_names), "roc_curves.png")
    _log_png(misclassified_png(test_paths, test_y, candidate.probs, config.class_names), "misclassified.png")
    head_ms = ms_per_image(lambda x: candidate.head(x, training=False), test_x)
    runtime = features.runtime()
    pixels = load_images(test_paths[:20], tc.image_size)
    embed_ms = ms_per_image(runtime, pixels, limit=20)
    mlflow.log_metrics(
        {
            "n_train": int(features.parts["train"].sum()),
            "n_val": int(features.parts["val"].sum()),
            "n_test": int(features.parts["test"].sum()),
            "embed_images": features.embedded,
            "embed_seconds": round(features.embed_seconds, 3),
            "ms_per_image_head": head_ms,
            "ms_per_image_end_to_end": embed_ms + head_ms,
        }
    )
    scores = [ModelScore("cnn_head", candidate.metrics, head_ms)]
    for score in score_baselines(features.part("train"), (test_x, test_y), config.class_names, config.project.seed):
        with mlflow.start_run(run_name=f"baseline-{score.name}", nested=True):
            mlflow.set_tag("baseline", score.name)
            mlflow.log_metrics({**score.metrics, "ms_per_image": score.ms_per_image})
        scores.append(score)
    mlflow.log_text(comparison_table(scores), "comparison.md")
    if candidate.classifier is None and features.runtime_name.startswith("openvino"):
        log_openvino_embedder(features.ir_file, features.runtime_name, features.int8)
    classifier = candidate.classifier or build_classifier(features.embedder, candidate.head)
    return log_classifier(classifier, config.class_names, tc.image_size, pixels[:1])


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
    with mlflow.start_run(run_name=f"resnet50-{features.choice.used}") as run:
        candidate = train_candidate(config, features)
        _log_candidate(config, candidate)
        model_uri = _finish_run(config, features, candidate, config_source, report_file)
        seconds = round(time.monotonic() - started, 2)
        mlflow.log_metric("train_stage_seconds", seconds)
    log.info(
        "run %s: test accuracy %.3f, macro F1 %.3f, weights %s",
        run.info.run_id,
        candidate.metrics["test_accuracy"],
        candidate.metrics["test_macro_f1"],
        features.choice.used,
    )
    return _result(run.info.run_id, model_uri, features, candidate, seconds)


def sweep(
    config: Config,
    grid_points: list[list[str]],
    split_file: Path,
    config_source: str = "",
    report_file: Path | None = None,
) -> TrainResult:
    """Train one candidate per grid point over the one embedding cache, as child runs of a sweep run.

    The candidate with the lowest validation loss (never the test split) is completed in the parent run and
    handed to the quality gate.

    Args:
        config: the base config.
        grid_points: ``section.key=value`` overrides, one list per point.
        split_file: the split file.
        config_source: recorded as a tag.
        report_file: the scrape report to attach.
    """
    started = time.monotonic()
    points = [override_config(config, overrides) for overrides in grid_points]
    features = load_features(config, split_file)
    configure_tracking(config.tracking)
    with mlflow.start_run(run_name=f"sweep-{len(grid_points)}") as parent:
        mlflow.set_tag("sweep.points", json.dumps(grid_points))
        candidates = []
        for index, (point, overrides) in enumerate(zip(points, grid_points, strict=True)):
            with mlflow.start_run(run_name=f"point-{index}", nested=True):
                mlflow.set_tag("sweep.overrides", " ".join(overrides))
                candidate = train_candidate(point, features)
                _log_candidate(point, candidate)
            candidates.append(candidate)
        best = int(np.argmin([c.val_loss for c in candidates]))
        point, candidate = points[best], candidates[best]
        mlflow.set_tag("sweep.best", " ".join(grid_points[best]))
        _log_candidate(point, candidate)
        model_uri = _finish_run(point, features, candidate, config_source, report_file)
        seconds = round(time.monotonic() - started, 2)
        mlflow.log_metric("train_stage_seconds", seconds)
    return _result(parent.info.run_id, model_uri, features, candidate, seconds)


def _result(run_id: str, model_uri: str, features: Features, candidate: Candidate, seconds: float) -> TrainResult:
    return TrainResult(
        run_id,
        model_uri,
        candidate.metrics,
        features.choice.used,
        features.runtime_name,
        candidate.best_epoch,
        seconds,
    )


def override_config(config: Config, overrides: list[str]) -> Config:
    """``config`` with ``section.key=value`` overrides applied and validated."""
    from pydantic import ValidationError

    from configs.loader import ConfigError, apply_overrides, format_validation_error

    try:
        return type(config).model_validate(apply_overrides(config.model_dump(mode="json"), overrides))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "sweep grid")) from None


def read_grid(path: str | Path) -> list[list[str]]:
    """Expand a sweep file's ``grid`` (key -> list of values) into one override list per point (cartesian)."""
    import itertools

    import yaml

    from configs.loader import ConfigError

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: sweep file not found")
    data = yaml.safe_load(file.read_text()) or {}
    grid = data.get("grid") if isinstance(data, dict) else None
    if not isinstance(grid, dict) or not grid or set(data) != {"grid"}:
        raise ConfigError(f"{file}: expected exactly one top-level key 'grid' mapping config keys to value lists")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{file}: grid.{key}: expected a non-empty list of values")
    keys = list(grid)
    return [
        [
            f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in zip(keys, combo, strict=True)
        ]
        for combo in itertools.product(*(grid[k] for k in keys))
    ]
