"""The Prefect tasks: each wraps one call into a stage library (``scraper``, ``training``, ``serving``).

Network and disk tasks carry retries. Prefect caches the split (keyed on the config and the bytes of the
files it reads); every other task says why it is not cached: most of them exist for their side effects (an
MLflow run, a registry alias, an artifact, an alert), which a cache hit would skip. Embedding, the costly
part, is cached by content in the stage itself (``training.embedding.embed``: image sha256 + exact base weights +
runtime), which also serves ``stj train`` outside Prefect and survives a new Prefect database.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.label_overrides import OVERRIDES_NAME, read_overrides
from core.manifest import MANIFEST_NAME, REPORT_NAME
from flows.caching import inputs_and_files
from flows.interrupts import at_safe_points, interrupt_wins
from flows.notify import post_alert
from flows.politeness import DaskHostState
from flows.settings import RunConfig
from flows.summary import class_metrics_table, summary_markdown
from scraper.parts import merge_parts, plan_parts, scrape_part
from scraper.scrape import scrape
from serving.infra_check import infra_check
from serving.review import export_review
from training.embedding.shards import embed_shard, plan_embedding
from training.embedding.store import StoredVectors
from training.fitting.crossval import fit_fold
from training.labels.label_issues import ISSUES_NAME, check_labels, cv_inputs, read_issues
from training.publishing.imagenet import point_alias, publish_imagenet_model
from training.publishing.publish import register_and_judge, settle
from training.runs.compare import choose
from training.runs.sweep import sweep
from training.runs.track import run_link
from training.runs.train import TrainResult, train
from training.splitting.split import SPLIT_NAME, SPLIT_PARAMS_NAME, prepare
from training.validation.validate import accept, validate


# Not cached: reads a live site; the manifest already makes a re-run incremental.
@task(name="scrape-search-results", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
@interrupt_wins
def scrape_task(config: RunConfig, base_url: str | None = None) -> dict[str, Any]:
    """Scrape every class's queries (resumes from the manifest on retry)."""
    return scrape(config, base_url=base_url).to_dict()


# Not cached: clears what a killed per-query scrape left.
@task(name="plan-query-scrapes", cache_policy=NO_CACHE)
def plan_parts_task(config: RunConfig) -> list[tuple[str, str, str]]:
    """(class, query, part file) for each per-query scrape task."""
    return plan_parts(config)


# Not cached: reads a live site.
@task(name="scrape-query", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def scrape_part_task(
    config: RunConfig, base_url: str | None, label: str, query: str, part: str, scrape_id: str
) -> dict[str, Any]:
    """One query's scrape into its own part file, on a Dask worker; the scrape's tasks share each host's
    politeness (delay, slots) through the scheduler, under ``scrape_id``."""
    return scrape_part(config, base_url, label, query, part, hosts=DaskHostState(scrape_id))


# Not cached: writes the manifest.
@task(name="merge-query-scrapes", cache_policy=NO_CACHE)
@interrupt_wins
def merge_parts_task(config: RunConfig, parts: list[str]) -> dict[str, Any]:
    """The parts' photos adopted into the manifest in query order; the stage's report."""
    return merge_parts(config, parts).to_dict()


# Cached: the split is a function of the config and these files; a hit needs all of them unchanged
# (split.csv included, so a deleted or edited split is made again; the first run after a split is written
# therefore recomputes it once, to the same result, and the runs after it hit).
SPLIT_INPUTS = (MANIFEST_NAME, SPLIT_NAME, SPLIT_PARAMS_NAME, ISSUES_NAME, OVERRIDES_NAME)


@task(name="split-manifest", cache_policy=inputs_and_files(*SPLIT_INPUTS), persist_result=True)
def prepare_task(config: RunConfig, plan: Path | None = None) -> Path:
    """Write the split file (photos keep their side across runs): the ``plan`` validate made, when given."""
    return prepare(config, left_out(config), plan)


def left_out(config: RunConfig) -> list[str]:
    """Photo paths the split leaves out: the last run's label issues when ``split.exclude_label_issues``, but
    not those a reviewer decided about (relabelled, kept or added: the decision wins)."""
    if not config.split.exclude_label_issues:
        return []
    issues = read_issues(config.project.data_dir)
    if "sha256" in issues:
        decided = read_overrides(config.project.data_dir)
        issues = issues[~issues["sha256"].isin(decided.loc[decided["decision"] != "exclude", "sha256"])]
    return issues["path"].tolist()


# Not cached: reads the server's database, which changes between runs (the split's cache key has the file).
@task(name="export-review-decisions", cache_policy=NO_CACHE)
def export_review_task(config: RunConfig) -> dict[str, int] | None:
    """The admin's review decisions (``/review``) written as this run's label overrides, added uploads saved
    with their manifest rows; ``None`` (and a warning) when the server's database cannot be read."""
    exported = export_review(config.serve.database_url, config.project.data_dir)
    if exported is None:
        get_run_logger().warning(
            "review decisions not read: serve.database_url cannot be reached; %s stays as it was", OVERRIDES_NAME
        )
        return None
    return asdict(exported)


# Not cached: its report artifact and its stop must happen on every run.
@task(name="validate-data", cache_policy=NO_CACHE)
def validate_task(config: RunConfig) -> tuple[dict[str, Any], Path | None]:
    """Check this run's data against floors and the last good run's; the report becomes a Prefect artifact.
    A failed check raises (naming it) so nothing trains on bad data. Returns the statistics and the split it
    planned (for the prepare stage)."""
    outcome = validate(config, left_out(config))
    create_markdown_artifact(
        key="stj-data-validation", markdown=outcome.report, description="data statistics and checks of this run"
    )
    outcome.raise_if_failed()
    return outcome.stats, outcome.plan


# Not cached: a write whose point is to happen.
@task(name="accept-data-stats", cache_policy=NO_CACHE)
def accept_task(config: RunConfig) -> None:
    """Make this run's data statistics the baseline of the next run."""
    accept(config.project.data_dir)


# Not cached: each call is an MLflow run (a hit would leave none); embeddings are cached by content.
@task(name="train-and-track", cache_policy=NO_CACHE)
@interrupt_wins
@at_safe_points
def train_task(config: RunConfig, split_file: Path, config_source: str) -> dict[str, Any]:
    """Embed, fit, evaluate and log one MLflow run."""
    report = Path(config.project.data_dir) / REPORT_NAME
    result = train(config, split_file, config_source=config_source, report_file=report)
    return result.__dict__


# Not cached: each call is an MLflow run (a hit would leave none); embeddings are cached by content.
@task(name="sweep-and-track", cache_policy=NO_CACHE)
@interrupt_wins
@at_safe_points
def sweep_task(config: RunConfig, grid_points: list[list[str]], split_file: Path, config_source: str) -> dict[str, Any]:
    """Train one child run per grid point; the best by validation loss is the candidate."""
    report = Path(config.project.data_dir) / REPORT_NAME
    return sweep(config, grid_points, split_file, config_source=config_source, report_file=report).__dict__


# Not cached: registers a version.
@task(name="register-and-gate", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def judge_task(config: RunConfig, model_uri: str, run_id: str) -> dict[str, Any]:
    """Register the model version and let the quality gate judge it (the alias does not move yet)."""
    return register_and_judge(config, model_uri, run_id)


# Not cached: starts a server and logs its figures on the version's run.
@task(name="infra-check", cache_policy=NO_CACHE)
@interrupt_wins
def infra_check_task(
    config: RunConfig, model_name: str, version: str, photos: list[str], run_id: str | None
) -> dict[str, Any]:
    """Serve the version in a real `stj serve` and score the canary photos through it."""
    return asdict(infra_check(config, model_name, version, [Path(p) for p in photos], run_id))


# Not cached: moves the alias (or tags the version rejected).
@task(name="move-alias-or-reject", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def settle_task(config: RunConfig, judged: dict[str, Any], check: dict[str, Any] | None) -> dict[str, Any]:
    """Move the alias if the gate and the infra check both passed; record the move or the rejection."""
    return settle(config, judged, check)


# Not cached: logs into the candidate's run, a new one each time.
@task(name="find-label-issues", cache_policy=NO_CACHE)
@interrupt_wins
@at_safe_points
def label_issues_task(
    config: RunConfig,
    split_file: Path,
    run_id: str,
    embeddings: tuple[str, str],
    folds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """k-fold on the candidate's stored embeddings (or the folds run elsewhere): label issues and the
    cross-validation report, logged to the candidate's run."""
    return check_labels(config, split_file, run_id, embeddings, folds)


# Not cached: the plan is what the embedding cache lacks right now.
@task(name="plan-embedding", cache_policy=NO_CACHE)
@interrupt_wins
@at_safe_points
def plan_embedding_task(config: RunConfig, split_file: Path, shard_size: int) -> dict[str, Any]:
    """The runtime (chosen on this machine) and the shards of photos still to embed."""
    return plan_embedding(config, split_file, shard_size).__dict__


# Not cached: its output is the embedding cache itself (content-addressed), which a re-run reads.
@task(name="embed-shard", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def embed_shard_task(config: RunConfig, split_file: Path, runtime: str, shas: list[str]) -> int:
    """Embed one shard of photos into the cache, wherever the task runner runs it."""
    return embed_shard(config, split_file, runtime, shas)


# Not cached: reads the embedding cache, which is already content-addressed.
@task(name="cross-validation-inputs", cache_policy=NO_CACHE)
@interrupt_wins
def cv_inputs_task(
    config: RunConfig, split_file: Path, embeddings: tuple[str, str]
) -> tuple[StoredVectors, np.ndarray, list]:
    """The cross-validated photos' stored features (by reference) and labels, and the folds' rows."""
    return cv_inputs(config, split_file, embeddings)


# Not cached: cheap next to hashing its inputs (the features of every cross-validated photo).
@task(name="cross-validation-fold", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def fold_task(
    config: RunConfig, vectors: StoredVectors, labels: np.ndarray, rows: tuple[np.ndarray, np.ndarray], fold: int
) -> dict[str, Any]:
    """One fold of the label-issue cross-validation, wherever the task runner runs it (the features read from
    the store there)."""
    n_classes, seed = len(config.class_names), config.project.seed + fold
    return fit_fold(vectors.load(), labels, rows, n_classes, config.train, seed)


# Not cached: tags the sibling runs.
@task(name="choose-candidate", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def choose_task(config: RunConfig, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the lowest validation loss among siblings (each tagged with the comparison)."""
    return choose([TrainResult(**run) for run in runs], config.tracking).__dict__


# Not cached: registers a model; it checks the registry itself and does nothing when done.
@task(name="publish-imagenet-model", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_imagenet_task(config: RunConfig) -> dict[str, str] | None:
    """Register the ImageNet top-5 model once per checkpoint (nothing when it is already registered)."""
    return publish_imagenet_model(config.tracking)


# Not cached: moves an alias.
@task(name="point-imagenet-alias", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def imagenet_alias_task(config: RunConfig, published: dict[str, str]) -> None:
    """Point the alias at the ImageNet version that passed its infra check."""
    point_alias(config.tracking, published)


# Not cached: creates this run's artifacts.
@task(name="publish-run-summary", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def summary_task(config: RunConfig, result: dict[str, Any]) -> None:
    """The run's summary (artifact ``stj-summary``) and per-class test metrics (``stj-class-metrics``)."""
    link = run_link(config.tracking, result["train"]["run_id"])
    create_markdown_artifact(
        key="stj-summary", markdown=summary_markdown(result, link), description="what this pipeline run did"
    )
    create_table_artifact(
        key="stj-class-metrics",
        table=class_metrics_table(result["train"]["metrics"], config.class_names),
        description="test precision, recall and F1 per class of the candidate model",
    )


# Not cached: an alert per event.
@task(name="send-alert", cache_policy=NO_CACHE)
def alert_task(config: RunConfig, payload: dict[str, Any]) -> bool:
    """POST an alert to ``notify.webhook_url`` (nothing when unset); whether it was delivered."""
    return post_alert(config.notify.webhook_url, payload, config.notify.timeout_s)
