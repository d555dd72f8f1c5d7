"""End-to-end fixtures: one tiny pipeline run shared by the modules that read its store, and the `stj`
command run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable

import pytest

from core.processes import free_port
from flows.settings import load_run_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, overrides_for, prefect_harness):
    """Run the parent flow once per module on the tiny catalog (the catalog is started by the scrape flow
    itself); yields (config, overrides, summary). Once per module, not per session: a module's tests read
    the newest Prefect artifacts, which another module's pipeline run would replace."""
    from flows.pipeline import pipeline

    root = tmp_path_factory.mktemp("pipeline")
    overrides = [*overrides_for(root), f"scrape.base_url=http://127.0.0.1:{free_port()}"]
    config = load_run_config("configs/demo.yaml", overrides)
    summary = pipeline(config, config_source="configs/demo.yaml")
    return config, overrides, summary


@pytest.fixture(scope="session")
def stj() -> Callable[..., subprocess.CompletedProcess]:
    """Run ``stj ARGS`` (``python -m flows.cli``) with ``--set`` for each override; output captured."""

    def run(
        args: list[str], overrides: Iterable[str] = (), env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        sets = [arg for o in overrides for arg in ("--set", o)]
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *args, *sets],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
            stdin=subprocess.DEVNULL,
        )

    return run
