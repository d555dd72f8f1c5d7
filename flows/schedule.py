"""Serving the pipeline as a Prefect deployment on a cron schedule, until the command is stopped.

Prefect's ``Flow.serve`` does this, but its runner's SIGTERM handler (3.8.8) calls the asynchronous
``stop()`` without awaiting it and exits: the scheduled run in progress goes on, the command hangs. Here the
same runner is started directly and a SIGTERM awaits ``Runner.astop()``, which cancels the running flow
runs (their processes get SIGTERM: an open MLflow run ends KILLED) and ends the polling loops. A Ctrl-C
reaches the flow-run processes with the terminal's SIGINT and stops the runner as in Prefect.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.runner import Runner
from prefect.schedules import Schedule


def build_runner(flow: Flow, name: str, schedule: Schedule, parameters: dict[str, Any]) -> Runner:
    """A runner serving ``flow`` as deployment ``name``; runs never overlap (a run falling due while the last
    one is going is cancelled: they share one data folder and one registry)."""
    runner = Runner(name=name, pause_on_shutdown=True)
    add_flow(runner, flow, name, schedule, parameters)
    return runner


def add_flow(runner: Runner, flow: Flow, name: str, schedule: Schedule, parameters: dict[str, Any]) -> None:
    """Serve ``flow`` from ``runner`` too, as deployment ``name`` on ``schedule``, its runs never overlapping."""
    runner.add_flow(
        flow,
        name=name,
        schedules=[schedule],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        parameters=parameters,
    )


async def _serve(runner: Runner) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    # Runner.start installs this attribute as the SIGTERM handler; Python runs it in the loop's thread
    runner.handle_sigterm = lambda *_: loop.call_soon_threadsafe(stopping.set)

    async def stop_on_sigterm() -> None:
        await stopping.wait()
        while not runner.started:  # a SIGTERM during start-up: astop() refuses a runner not yet started
            await asyncio.sleep(0.1)
        await runner.astop()

    watcher = asyncio.create_task(stop_on_sigterm())
    try:
        await runner.start()
    finally:
        watcher.cancel()


def serve_until_stopped(runner: Runner) -> None:
    """Run ``runner`` until Ctrl-C or SIGTERM; then raise :class:`KeyboardInterrupt` (serving ends no other way)."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        asyncio.run(_serve(runner))
    finally:  # the runner's handler points at a closed loop now: a later SIGTERM stops the clean-up as usual
        signal.signal(signal.SIGTERM, previous)
    raise KeyboardInterrupt
