"""Fanning the heavy work out (``orchestration.task_runner: dask``): embedding in shards and the k-fold
folds become Prefect tasks on a Dask cluster, an existing one (``orchestration.dask_address``) or a local
one started for the stage. With ``local`` the stages do the same work in their own process.

The shards write into the same content-addressed embedding cache that a local run fills, and the folds
return what the local loop computes, so both give the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Flow, get_run_logger

from flows.settings import OrchestrationConfig, RunConfig
from flows.tasks import embed_shard_task, fold_task, plan_embedding_task
from training.label_issues import fold_count


def fans_out(config: RunConfig) -> bool:
    """Whether the heavy work runs as tasks on the Dask runner."""
    return config.orchestration.task_runner == "dask"


def task_runner(orchestration: OrchestrationConfig):
    """The Dask task runner the settings ask for (prefect-dask)."""
    from prefect_dask import DaskTaskRunner

    if orchestration.dask_address:
        return DaskTaskRunner(address=orchestration.dask_address)
    cluster = {"n_workers": orchestration.dask_workers, "threads_per_worker": 1, "dashboard_address": None}
    return DaskTaskRunner(cluster_kwargs=cluster)


def on_configured_runner(stage: Flow, config: RunConfig) -> Flow:
    """``stage`` with its tasks on the configured runner."""
    return stage.with_options(task_runner=task_runner(config.orchestration)) if fans_out(config) else stage


def embed_in_shards(config: RunConfig, split_file: Path) -> int:
    """Embed the photos missing from the cache, one task per shard; how many were embedded."""
    plan = plan_embedding_task(config, split_file, config.orchestration.embed_shard_size)
    futures = [embed_shard_task.submit(config, split_file, plan["runtime"], shard) for shard in plan["shards"]]
    embedded = sum(future.result() for future in futures)
    get_run_logger().info(
        "embedded %d photos (%s) in %d shard tasks on %s",
        embedded,
        plan["runtime"],
        len(futures),
        config.orchestration.dask_address or "a local Dask cluster",
    )
    return embedded


def folds_as_tasks(config: RunConfig, split_file: Path) -> list[dict[str, Any]]:
    """Each fold of the label-issue cross-validation as a task; their results in fold order."""
    futures = [fold_task.submit(config, split_file, fold) for fold in range(fold_count(config, split_file))]
    return [future.result() for future in futures]
