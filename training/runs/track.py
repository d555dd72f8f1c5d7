"""MLflow at the edges: where runs go and what each run records.

The default store is embedded: a sqlite database plus a local artifact folder in the working directory.
A run records the config, the data (manifest joined with the split), the candidate's history and test
metrics, plots, timing, the baselines as child runs, and the model in the logged-model format.

Config keys: ``tracking.uri``, ``tracking.artifact_dir``, ``tracking.experiment``.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from configs.schema import Config, TrackingConfig
from core.experiments import ensure_experiment, is_tracking_server
from core.label_overrides import overrides_digest, overrides_path, read_overrides
from core.logged_model import EVALUATION_ARTIFACT, EmbedderRecord, log_classifier, log_embedder
from core.manifest import manifest_path, read_manifest
from core.model import build_classifier
from core.ood import INDEX_ARTIFACT
from core.split_log import log_split
from core.traffic_baseline import BASELINE_ARTIFACT
from core.version import code_version, package_version
from training.embedding.features import Features
from training.evaluation.evaluate import confusion_matrix_png, misclassified_png, roc_curves_png
from training.evaluation.ood import build_and_evaluate, traffic_baseline
from training.fitting.baselines import ModelScore, comparison_table, ms_per_image, score_baselines
from training.fitting.candidate import Candidate
from training.validation.validate import STATS_NAME

log = logging.getLogger(__name__)

OOD_EVALUATION = "ood/evaluation.json"

# MLflow 3 opens an experiment of unknown kind on its GenAI overview; this kind opens it on the training runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

# The params that shape the model and its data. The rest (the catalog's test switches, serving, alerts, where
# runs are stored) is in the run's config.json, not among the params the UI compares.
PARAM_KEYS = (
    "project.seed",
    "scrape.classes",
    "scrape.max_pages",
    "scrape.max_images_per_class",
    "scrape.min_side",
    "scrape.near_duplicate_distance",
    "scrape.skip_sponsored",
    "split",
    "labels.enabled",
    "train",
)


COMPARISON_VIEW = "stj-compare"  # the key of the experiment's saved runs view (the MLflow UI's shared view state)
# What the saved view shows: the runs table with STJ's key figures as columns, newest first, sibling backbones
# grouped by their pipeline run (the tag ``comparison``, training.runs.compare). MLflow 3.17 reads it from the experiment tag ``mlflow.sharedViewState.<key>``
# when the URL carries ``?viewStateShareKey=<key>`` (a "shared view"); column keys are ``<type>.`<name>```.
_COLUMNS = (
    *(f"metrics.`{m}`" for m in ("test_macro_f1", "test_accuracy", "best_val_loss", "ood_test_kept",
                                   "ood_probe_flagged", "ms_per_image_end_to_end", "epochs_run")),
    *(f"params.`{p}`" for p in ("train.image_size", "train.learning_rate", "train.epochs")),
    *(f"tags.`{t}`" for t in ("backbone", "comparison.chosen", "weights.used", "precision.chosen", "dataset.version")),
)  # fmt: skip
COMPARISON_STATE = {
    "orderByKey": "attributes.start_time",
    "orderByAsc": False,
    "selectedColumns": list(_COLUMNS),
    "columnOrder": list(_COLUMNS),  # as listed, the deciding figures first (MLflow sorts them by name otherwise)
    "groupBy": {"aggregateFunction": "max", "groupByKeys": [{"mode": "tag", "groupByData": "comparison"}]},
    "useGroupedValuesInCharts": False,
    "runListHidden": False,
}


def configure_tracking(cfg: TrackingConfig) -> str:
    """Point MLflow at the configured store and experiment (created with our artifact folder; its kind and the
    saved comparison view, :data:`COMPARISON_STATE`, kept current); returns its id."""
    mlflow.set_tracking_uri(cfg.uri)
    client = mlflow.MlflowClient()
    experiment_id = ensure_experiment(client, cfg.uri, cfg.experiment, cfg.artifact_dir, EXPERIMENT_KIND)
    _keep_experiment_tags(client, client.get_experiment(experiment_id))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextmanager
def tracked_run(**start_run_args: Any) -> Iterator[mlflow.ActiveRun]:
    """``mlflow.start_run``, except that a run cut short from outside ends KILLED, not FAILED: the MLflow UI
    then tells a stopped run from a broken one. "From outside" is any exception that is not an ``Exception``:
    Ctrl-C's ``KeyboardInterrupt``, ``SystemExit``, or what an orchestrator raises on SIGTERM (Prefect's
    ``TerminationSignal``)."""
    with mlflow.start_run(**start_run_args) as run:
        try:
            yield run
        except BaseException as exc:
            if not isinstance(exc, Exception):
                mlflow.end_run("KILLED")
            raise


def run_title(backbone: str, precision: str, photos: int) -> str:
    """A run's name in the UI: what was trained, how, on how much, when (now)."""
    return f"{backbone} · {precision} · {photos} photos · {datetime.now():%Y-%m-%d %H:%M}"


def run_link(cfg: TrackingConfig, run_id: str) -> str:
    """The run's page in the MLflow UI (``tracking.ui_url``, or the tracking server itself)."""
    ui = cfg.uri if is_tracking_server(cfg.uri) else cfg.ui_url
    experiment = mlflow.MlflowClient(tracking_uri=cfg.uri).get_run(run_id).info.experiment_id
    return f"{ui.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def _keep_experiment_tags(client: mlflow.MlflowClient, experiment) -> None:
    """The experiment's kind and saved comparison view as this version defines them (set when they differ)."""
    wanted = {**EXPERIMENT_KIND, f"mlflow.sharedViewState.{COMPARISON_VIEW}": json.dumps(COMPARISON_STATE)}
    for key, value in wanted.items():
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)


def comparison_link(cfg: TrackingConfig, ui_url: str | None = None) -> str:
    """The experiment's runs in the MLflow UI (``ui_url``, else ``tracking.ui_url`` or the tracking server), opened
    on the saved comparison view (put on an experiment made before it existed); the UI's home when the experiment
    does not exist yet."""
    ui = ui_url or (cfg.uri if is_tracking_server(cfg.uri) else cfg.ui_url)
    client = mlflow.MlflowClient(tracking_uri=cfg.uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        return ui.rstrip("/") + "/"
    _keep_experiment_tags(client, experiment)
    return f"{ui.rstrip('/')}/#/experiments/{experiment.experiment_id}/runs?viewStateShareKey={COMPARISON_VIEW}"


def flatten_config(config: Config) -> dict[str, str]:
    """``section.key -> value`` for every config value, as MLflow params."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        else:
            flat[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)

    walk("", config.model_dump(mode="json"))
    return flat


def model_params(config: Config) -> dict[str, str]:
    """The config values logged as MLflow params: those under :data:`PARAM_KEYS`."""
    return {
        key: value
        for key, value in flatten_config(config).items()
        if any(key == prefix or key.startswith(f"{prefix}.") for prefix in PARAM_KEYS)
    }


def log_history(history: dict[str, list[float]], prefix: str = "") -> None:
    """Per-epoch curves: ``train_loss``, ``val_loss``, ... (``prefix`` for fine-tuning's)."""
    for key, values in history.items():
        name = key if key.startswith("val_") else f"train_{key}"
        for step, value in enumerate(values, start=1):
            mlflow.log_metric(f"{prefix}{name}", value, step=step)


def log_candidate(config: Config, candidate: Candidate) -> None:
    """The config's model and data params, the training curves and the candidate's test metrics."""
    mlflow.log_params(model_params(config))
    log_history(candidate.history)
    if candidate.finetune_history:
        log_history(candidate.finetune_history, "finetune_")
    mlflow.log_metrics(
        {
            **candidate.metrics,
            "best_epoch": candidate.best_epoch,
            "epochs_run": len(candidate.history["loss"]),
            "best_val_loss": candidate.val_loss,
            "fit_seconds": round(candidate.fit_seconds, 3),
        }
    )


def log_context(config: Config, features: Features, candidate: Candidate, source: str, report: Path | None) -> None:
    """What ran on what: tags (weights, runtime, code), the data set, the config, the split and the scrape report."""
    base, tc = features.base, config.train
    finetune = "ran" if candidate.finetune_history else ("skipped: weights are none" if tc.finetune.enabled else "off")
    mlflow.set_tags(
        {
            "backbone": base.backbone.name,
            "weights.requested": base.weights.requested,
            "weights.used": base.weights.used,
            "weights.fell_back": str(base.weights.fell_back).lower(),
            "runtime": candidate.runtime.name,
            "precision.chosen": candidate.runtime.precision,  # a fine-tuned network is scored whole, in f32
            **({f"int8.{k}": str(v) for k, v in base.int8.items()} if base.int8 else {}),
            "config_file": source,
            "code_version": code_version(),
            "stj_version": package_version(),
            "embedding_cache": base.embedding_key(),
            "finetune": finetune,
        }
    )
    manifest = read_manifest(manifest_path(config.project.data_dir))
    frame = features.split.merge(manifest[["path", "asin", "image_id", "query"]], on="path", how="left")
    with warnings.catch_warnings():  # a local path matches MLflow's local-artifact source twice; either is right
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        dataset = mlflow.data.from_pandas(
            frame, source=str(manifest_path(config.project.data_dir)), name="stj-products", targets="class"
        )
    mlflow.log_input(dataset, context="training")
    log_dataset_version(Path(config.project.data_dir), dataset.digest)
    mlflow.log_dict(config.model_dump(mode="json"), "config.json")
    mlflow.log_dict(candidate.precision.summary(), "precision.json")
    log_split(features.split)
    if report is not None and report.exists():
        mlflow.log_dict(json.loads(report.read_text()), "scrape_report.json")
    stats = Path(config.project.data_dir) / STATS_NAME
    if stats.exists():
        mlflow.log_dict(json.loads(stats.read_text()), STATS_NAME)


def log_dataset_version(data_dir: Path, split_digest: str) -> None:
    """The run's dataset version: the logged split's digest and the label overrides' (``core.label_overrides``),
    so that manifest + overrides name what it trained on; the override file itself as an artifact."""
    overrides = read_overrides(data_dir)
    digest = overrides_digest(overrides)
    mlflow.set_tags(
        {
            "dataset.version": f"{split_digest}+overrides:{digest}",
            "dataset.overrides_digest": digest,
            "dataset.overrides": str(len(overrides)),
        }
    )
    if not overrides.empty:
        mlflow.log_artifact(str(overrides_path(data_dir)))


def _log_png(png: bytes | None, name: str) -> None:
    if png is not None:
        from PIL import Image

        mlflow.log_image(Image.open(io.BytesIO(png)), name)


def log_plots(features: Features, candidate: Candidate, class_names: list[str]) -> None:
    """Confusion matrix, ROC curves and the most confident mistakes, on the test split."""
    test_y = features.part("test")[1]
    predicted = candidate.probs.argmax(axis=1)
    _log_png(confusion_matrix_png(test_y, predicted, class_names), "confusion_matrix.png")
    counts = np.zeros((len(class_names), len(class_names)), dtype=int)  # rows: true class, columns: predicted
    np.add.at(counts, (np.asarray(test_y, dtype=int), predicted), 1)
    mlflow.log_dict({"classes": list(class_names), "confusion_matrix": counts.tolist()}, EVALUATION_ARTIFACT)
    _log_png(roc_curves_png(test_y, candidate.probs, class_names), "roc_curves.png")
    paths = features.part_paths("test")
    _log_png(
        misclassified_png(paths=paths, y_true=test_y, probs=candidate.probs, class_names=class_names),
        "misclassified.png",
    )


def log_speed(features: Features, candidate: Candidate, pixels: np.ndarray) -> float:
    """Split sizes, embedding work and per-image inference time (``pixels``: a few test photos); returns the
    head's ms per image."""
    head_ms = ms_per_image(lambda x: candidate.head(x, training=False), features.part("test")[0])
    embed_ms = ms_per_image(features.base.runtime(candidate.precision.chosen), pixels, limit=20)
    mlflow.log_metrics(
        {
            "n_train": features.count("train"),
            "n_val": features.count("val"),
            "n_test": features.count("test"),
            "embed_images": features.embedded,
            "embed_seconds": round(features.embed_seconds, 3),
            "ms_per_image_head": head_ms,
            "ms_per_image_end_to_end": embed_ms + head_ms,
            "params_backbone": features.base.base.count_params(),
            "params_head": candidate.head.count_params(),
        }
    )
    return head_ms


def summary_table(config: Config, features: Features, candidate: Candidate) -> str:
    """``summary.md``: the metrics that decide, first, then per class, then how the model was made."""
    m = candidate.metrics
    rows = [
        ("test macro F1", f"{m['test_macro_f1']:.4f}"),
        ("test accuracy", f"{m['test_accuracy']:.4f}"),
        ("best validation loss", f"{candidate.val_loss:.4f} (epoch {candidate.best_epoch})"),
        *((f"test F1 {name}", f"{m[f'test_{name}_f1']:.4f}") for name in config.class_names),
        ("photos train / val / test", " / ".join(str(features.count(side)) for side in ("train", "val", "test"))),
        ("backbone", f"{features.base.backbone.name} (weights {features.base.weights.used})"),
        ("runtime", candidate.runtime.name),
    ]
    return "| metric | value |\n|---|---|\n" + "".join(f"| {name} | {value} |\n" for name, value in rows)


def log_baselines(config: Config, features: Features, candidate: Candidate, head_ms: float) -> None:
    """k-NN and a decision tree on the same features as child runs, and ``comparison.md`` with the head."""
    scores = [ModelScore("cnn_head", candidate.metrics, head_ms)]
    for score in score_baselines(
        train=features.part("train"),
        test=features.part("test"),
        class_names=config.class_names,
        seed=config.project.seed,
    ):
        with tracked_run(run_name=f"baseline {score.name}", nested=True):
            mlflow.set_tag("baseline", score.name)
            mlflow.log_metrics({**score.metrics, "ms_per_image": score.ms_per_image})
        scores.append(score)
    mlflow.log_text(comparison_table(scores), "comparison.md")


def log_model(config: Config, features: Features, candidate: Candidate) -> str:
    """The model in the logged-model format (with the embedder as training ran it); returns its URI."""
    base, chosen = features.base, candidate.precision.chosen
    if candidate.classifier is None and chosen.backend == "openvino" and base.ir_file(chosen).exists():
        xml = base.ir_file(chosen)
        hint = base.float_hint if chosen.is_int8 else chosen.precision
        log_embedder(xml, EmbedderRecord(runtime=chosen, hint=hint, xml=xml.name, int8=base.int8))
    classifier = candidate.classifier or build_classifier(base.embedder, candidate.head)
    return log_classifier(model=classifier, class_names=config.class_names, image_size=config.train.image_size)


def _log_bytes(data: bytes, artifact: str) -> None:
    """``data`` as the run's artifact file ``artifact`` (a path inside the run)."""
    with tempfile.TemporaryDirectory(prefix="stj-artifact-") as folder:
        file = Path(folder) / Path(artifact).name
        file.write_bytes(data)
        mlflow.log_artifact(str(file), str(Path(artifact).parent))


def log_ood(config: Config, features: Features, candidate: Candidate) -> None:
    """The "none of these" index (``ood/index.npz``, beside the model) and its evaluation: metrics
    ``ood_*`` and ``ood/evaluation.json``; and the traffic baseline ``stj monitor`` compares live traffic with
    (``monitor/baseline.npz``). A fine-tuned candidate gets none (tagged ``ood``): the cached
    features are not its embedder's."""
    if not config.ood.enabled:
        return
    if candidate.classifier is not None:
        mlflow.set_tag("ood", "none: fine-tuned, the cached features are not its embedder's")
        return
    spec = candidate.precision.chosen
    val, test = features.vectors_for(spec, "val"), features.vectors_for(spec, "test")
    evaluation = build_and_evaluate(
        config.ood,
        config.project.seed,
        train=(lambda rows: features.vectors_for(spec, "train", rows=rows), features.labels[features.mask("train")]),
        val=val,
        test=test,
        embed=features.base.runtime(spec),
        image_size=config.train.image_size,
    )
    mlflow.log_metrics(evaluation.metrics())
    mlflow.log_dict(evaluation.summary(), OOD_EVALUATION)
    baseline = traffic_baseline(evaluation.index, config.class_names, candidate.probs, test, val, config.project.seed)
    for artifact, data in ((INDEX_ARTIFACT, evaluation.index.to_bytes()), (BASELINE_ARTIFACT, baseline.to_bytes())):
        _log_bytes(data, artifact)
    log.info(
        "none-of-these index: %d reference photos, test photos kept %.1f %%, non-garment photos flagged %.1f %%",
        len(evaluation.index.reference),
        100 * evaluation.test_kept,
        100 * evaluation.probe_flagged,
    )
