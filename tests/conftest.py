"""Shared fixtures: a tiny config rooted in a temporary folder, and a real local catalog server."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from catalog import CatalogServer, running_catalog  # noqa: E402
from catalog.settings import CatalogConfig  # noqa: E402
from configs import Config  # noqa: E402
from flows.settings import load_run_config  # noqa: E402

TINY_CATALOG = {
    "catalog.products_per_class": 12,
    "catalog.results_per_page": 8,
    "catalog.sponsored_per_page": 2,
    "catalog.repeats_per_page": 1,
    "catalog.image_side": 160,
}


def tiny_overrides(root: Path) -> list[str]:
    """Overrides that make the demo config small enough for a test, rooted in ``root``."""
    values = {
        **TINY_CATALOG,
        "project.data_dir": str(root / "data"),
        "scrape.max_pages": 5,
        "scrape.delay_s": 0,
        "scrape.concurrency": 4,
        "scrape.timeout_s": 10,
        "scrape.retries": 1,
        "catalog.port": 0,
        "split.test_size": 0.25,
        "split.val_size": 0.25,
        "train.image_size": 64,
        "train.weights": "none",
        "train.epochs": 4,
        "train.patience": 2,
        "train.batch_size": 8,
        "train.runtime": "tensorflow",
        "tracking.uri": f"sqlite:///{root / 'mlflow.db'}",
        "tracking.artifact_dir": str(root / "mlartifacts"),
        "tracking.experiment": "stj-test",
        "serve.runtime": "tensorflow",
        "serve.history_path": str(root / "history.db"),
    }
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a tiny demo config under ``tmp_path``; extra ``key=value`` overrides win."""

    def make(*extra: str) -> Config:
        return load_run_config("configs/demo.yaml", [*tiny_overrides(tmp_path), *extra])

    return make


@pytest.fixture(scope="session")
def catalog_server() -> Iterator[CatalogServer]:
    """A real catalog HTTP server with the tiny inventory, on a free port."""
    config = CatalogConfig(**{k.split(".", 1)[1]: v for k, v in TINY_CATALOG.items()}, port=0)
    with running_catalog(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
