"""`stj serve` started for real (nginx + gunicorn) on the session's tiny registered model (``registry``); an app
with accounts and a signed-in client (``signed_in_app``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.registry import Registry
from tests.support import PASSWORD, SAME_ORIGIN


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


@pytest.fixture
def signed_in_app(app_for, tmp_path) -> Callable[..., tuple]:
    """``signed_in_app(predictor, *overrides, email=...)``: an app with accounts (``serve.auth=optional``), a
    client signed in on it as ``email`` and that account's bearer-token header."""

    def make(predictor, *overrides: str, email: str = "ann@example.com") -> tuple:
        app = app_for(tmp_path, predictor, "serve.auth=optional", *overrides)
        client = app.test_client()
        signup = client.post("/api/signup", json={"email": email, "password": PASSWORD}, headers=SAME_ORIGIN)
        assert signup.status_code == 201, signup.get_json()
        token = client.post("/api/tokens", json={"name": "script"}, headers=SAME_ORIGIN).get_json()["token"]
        return app, client, {"Authorization": f"Bearer {token}"}

    return make
