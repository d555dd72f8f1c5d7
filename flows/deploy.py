"""The pipeline as a deployment on a work pool of a persistent Prefect server: the team's way to schedule it.

``stj schedule`` serves the pipeline from its own process (one machine, gone with the command); here the
server keeps the deployment, its cron and every run's logs and artifacts in its database, and any
``prefect worker start --pool POOL`` (a ``process`` pool) runs the runs. The entrypoint is the installed
module ``flows.pipeline``, so a worker needs the package, not this checkout; it runs each flow run in the
folder ``stj deploy`` was run in, where the config's relative paths point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.types.entrypoint import EntrypointType

FLOW_NAME = "stj-pipeline"


def deploy_pipeline(parameters: dict[str, Any], name: str, pool: str, cron: str | None, working_dir: Path) -> UUID:
    """Register (or update) deployment ``stj-pipeline/<name>`` on ``pool``; runs never overlap (a run falling
    due while one is going is cancelled: they share one data folder and one registry)."""
    from flows.pipeline import pipeline

    return _deploy(pipeline, parameters, name, pool, cron, working_dir)


def deploy_monitor(parameters: dict[str, Any], name: str, pool: str, cron: str, working_dir: Path) -> UUID:
    """Register (or update) deployment ``stj-monitor/<name>`` on ``pool`` on ``cron`` (``flows.monitor``)."""
    from flows.monitor import monitor_flow

    return _deploy(monitor_flow, parameters, name, pool, cron, working_dir)


def _deploy(flow, parameters: dict[str, Any], name: str, pool: str, cron: str | None, working_dir: Path) -> UUID:
    return flow.deploy(
        name=name,
        work_pool_name=pool,
        cron=cron,
        parameters=parameters,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        job_variables={"working_dir": str(working_dir)},
        entrypoint_type=EntrypointType.MODULE_PATH,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )


def run_now(name: str) -> tuple[str, str]:
    """Run the deployment now and wait until the run ends; its (name, final state)."""
    from prefect.deployments import run_deployment

    run = run_deployment(f"{FLOW_NAME}/{name}", timeout=None)
    return run.name, run.state.name if run.state else "Unknown"
