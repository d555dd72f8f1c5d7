"""`stj serve` started for real (nginx + gunicorn) on the session's tiny registered model (``registry``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.registry import Registry


@pytest.fixture
def server_tmp() -> Iterator[Path]:
    """An empty folder for a server's TMPDIR, with a short path: nginx refuses a unix socket path over 107
    bytes, and pytest's own folders (deeper still under pytest-xdist) are long."""
    folder = Path(tempfile.mkdtemp(prefix="stj-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stj_server(registry: Registry, serve_subprocess) -> Callable[..., object]:
    """Start `stj serve` on the registry's model with extra ``--set`` overrides; stopped at the end."""

    def start(*extra: str, env: dict[str, str] | None = None, workers: int = 1):
        return serve_subprocess([*registry.overrides, *extra], env=env, workers=workers)

    return start
