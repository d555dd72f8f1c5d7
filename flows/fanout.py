"""Fanning the heavy work out (``orchestration.task_runner: dask``): scraping per query, embedding in shards
and the k-fold folds become Prefect tasks on a Dask cluster, an existing one (``orchestration.dask_address``)
or a local one started for the stage. With ``local`` the stages do the same work in their own process.

The query scrapes are merged into the one manifest by the rules a single scrape applies as photos arrive
(``scraper.parts``); the shards write into the same content-addressed embedding cache that a local run
fills, and the folds return what the local loop computes, so the model is the same.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from prefect import Flow, get_run_logger

from configs.sweep import override_config
from flows.settings import OrchestrationConfig, RunConfig
from flows.tasks import (
    cv_inputs_task,
    embed_shard_task,
    fold_task,
    merge_parts_task,
    plan_embedding_task,
    plan_parts_task,
    scrape_part_task,
)


def fans_out(config: RunConfig) -> bool:
    """Whether the heavy work runs as tasks on the Dask runner."""
    return config.orchestration.task_runner == "dask"


def task_runner(orchestration: OrchestrationConfig):
    """The Dask task runner the settings ask for (prefect-dask)."""
    from prefect_dask import DaskTaskRunner

    if orchestration.dask_address:
        return DaskTaskRunner(address=orchestration.dask_address)
    cluster = {
        "n_workers": orchestration.dask_workers,
        "threads_per_worker": 1,
        "dashboard_address": None,
        "preload": ["flows.dask_worker_setup"],  # the workers leave a terminal's Ctrl-C to the command
    }
    return DaskTaskRunner(cluster_kwargs=cluster)


def on_configured_runner(stage: Flow, config: RunConfig) -> Flow:
    """``stage`` with its tasks on the configured runner."""
    return stage.with_options(task_runner=task_runner(config.orchestration)) if fans_out(config) else stage


def with_absolute_data_dir(config: RunConfig) -> RunConfig:
    """The config with its data folder as an absolute path, as it is here: a worker resolves a relative path
    against its own folder."""
    return override_config(config, [f"project.data_dir={Path(config.project.data_dir).resolve()}"])


def scrape_per_query(config: RunConfig, base_url: str | None) -> dict[str, Any]:
    """Scrape each query as a task, then merge what they kept into the manifest (what finished is merged
    even when a task failed; the failure is raised after). The tasks share one delay and one cap on requests
    in flight per host (``flows.politeness``): N queries at once never multiply a host's request rate."""
    config, scrape_id = with_absolute_data_dir(config), uuid.uuid4().hex[:12]
    jobs = plan_parts_task(config)
    futures = [scrape_part_task.submit(config, base_url, label, query, part, scrape_id) for label, query, part in jobs]
    failed = None
    for future in futures:
        try:
            future.result()
        except Exception as exc:  # every part is waited for before the merge
            failed = failed or exc
    report = merge_parts_task(config, [part for _, _, part in jobs])
    if failed is not None:
        raise failed
    get_run_logger().info("scraped %d queries as tasks on %s", len(jobs), _where(config))
    return report


def _where(config: RunConfig) -> str:
    return config.orchestration.dask_address or "a local Dask cluster"


def embed_in_shards(config: RunConfig, split_file: Path) -> dict[str, Any]:
    """Embed the photos missing from the cache, one task per shard: how many were embedded (``embedded``), in
    how many seconds, planning included (``seconds``)."""
    started = time.monotonic()
    config, split_file = with_absolute_data_dir(config), Path(split_file).resolve()
    plan = plan_embedding_task(config, split_file, config.orchestration.embed_shard_size)
    futures = [embed_shard_task.submit(config, split_file, plan["runtime"], shard) for shard in plan["shards"]]
    embedded = sum(future.result() for future in futures)
    seconds = time.monotonic() - started
    get_run_logger().info(
        "embedded %d photos (%s) in %d shard tasks on %s in %.0f s",
        embedded,
        plan["runtime"],
        len(futures),
        _where(config),
        seconds,
    )
    return {"embedded": embedded, "seconds": round(seconds, 3)}


def folds_as_tasks(config: RunConfig, split_file: Path, embeddings: tuple[str, str]) -> list[dict[str, Any]]:
    """Each fold of the label-issue cross-validation as a task, reading the features from the store
    (``embeddings``: folder and key, shared storage) itself; their results in fold order."""
    vectors, labels, folds = cv_inputs_task(config, split_file, embeddings)
    futures = [fold_task.submit(config, vectors, labels, rows, fold) for fold, rows in enumerate(folds)]
    return [future.result() for future in futures]
