"""Shared fixtures: tiny configs rooted in a temporary folder, a real local catalog server, a small real
predictor, and one Prefect test harness for the whole session.

Test folders by purpose: ``code`` (units, no network), ``scraper`` (the scraper against the real local
catalog), ``data`` (quality of a scraped data set: any manifest + split), ``training`` (training mechanics),
``model`` (behaviour of a trained model), ``flows`` (Prefect tasks through ``.fn()``), ``serving`` (the
HTTP API), ``browser`` (the page in headless Chromium), ``e2e`` (Prefect -> MLflow -> gunicorn).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Results Prefect persists (the cached split) go to a folder of this test session, not the user's
# ~/.prefect/storage; subprocesses inherit it; removed when the session ends.
_PREFECT_STORAGE = tempfile.mkdtemp(prefix="stj-test-prefect-storage-")
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = _PREFECT_STORAGE
atexit.register(shutil.rmtree, _PREFECT_STORAGE, ignore_errors=True)

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

from catalog import CatalogServer, running_catalog  # noqa: E402
from catalog.settings import CatalogConfig  # noqa: E402
from configs.schema import CLASS_NAMES_DEFAULT  # noqa: E402
from core.processes import free_port, stop_process  # noqa: E402
from flows.settings import RunConfig, load_run_config  # noqa: E402

CLASSES = list(CLASS_NAMES_DEFAULT)
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


@pytest.fixture(scope="session")
def overrides_for() -> Callable[[Path], list[str]]:
    """:func:`tiny_overrides`, for fixtures and subprocesses that build their own config."""
    return tiny_overrides


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., RunConfig]:
    """Build a tiny demo config under ``tmp_path``; extra ``key=value`` overrides win."""

    def make(*extra: str) -> RunConfig:
        return load_run_config("configs/demo.yaml", [*tiny_overrides(tmp_path), *extra])

    return make


@pytest.fixture(scope="session")
def catalog_server() -> Iterator[CatalogServer]:
    """A real catalog HTTP server with the tiny inventory, on a free port."""
    config = CatalogConfig(**{k.split(".", 1)[1]: v for k, v in TINY_CATALOG.items()}, port=0)
    with running_catalog(config) as server:
        yield server


@pytest.fixture(scope="session")
def make_predictor() -> Callable[..., object]:
    """Build a small real predictor (a random ResNet50 at 32 px, TensorFlow), as version ``version``."""
    from core.logged_model import LoggedModel
    from core.model import build_classifier, build_frozen, build_head
    from serving.predictor import ModelRef, Predictor

    embedder = build_frozen("resnet50", 32, seed=0)[1]

    def make(version: str = "1") -> Predictor:
        features = np.random.default_rng(0).normal(size=(8, 2048)).astype("float32")
        head = build_head(len(CLASSES), (16, 8), (0.3, 0.2), features)
        logged = LoggedModel(build_classifier(embedder, head), CLASSES, 32, run_id=None)
        return Predictor(logged, ModelRef("stj-classifier", version, "mem"), runtime="tensorflow")

    return make


@pytest.fixture(scope="session")
def lite_predictor() -> object:
    """A small real model whose ONNX export a browser loads quickly: EfficientNet-Lite0 (random base) at 32 px
    and a head, as version 1."""
    from core.logged_model import LoggedModel
    from core.model import build_classifier, build_frozen, build_head
    from serving.predictor import ModelRef, Predictor

    embedder = build_frozen("efficientnet_lite0", 32, seed=0)[1]
    features = np.random.default_rng(0).normal(size=(8, 1280)).astype("float32")
    head = build_head(len(CLASSES), (16, 8), (0.0, 0.0), features)
    logged = LoggedModel(build_classifier(embedder, head), CLASSES, 32, run_id=None)
    return Predictor(logged, ModelRef("stj-classifier", "1", "mem"), runtime="tensorflow")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A real local HTTP receiver for alerts: yields its URL and the JSON bodies POSTed to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class RunningServer:
    """`stj serve` in a subprocess."""

    base: str
    proc: subprocess.Popen
    log: Path

    def family(self) -> list[psutil.Process]:
        """The server and everything below it (gunicorn workers, nginx, the watchdog)."""
        parent = psutil.Process(self.proc.pid)
        return [parent, *parent.children(recursive=True)]


@pytest.fixture
def serve_subprocess(tmp_path: Path) -> Callable[..., object]:
    """Start `stj serve --config configs/demo.yaml --port N` with ``--set`` overrides on a free port, wait for
    ``/ready``; stopped (SIGTERM, then SIGKILL) when the ``with`` block ends."""

    @contextmanager
    def start(overrides: list[str], env: dict[str, str] | None = None) -> Iterator[RunningServer]:
        port = free_port()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `stj serve` makes its own for several workers
        sets = ["--port", str(port), *(arg for o in overrides for arg in ("--set", o))]
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "serve", "--config", "configs/demo.yaml", *sets],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = RunningServer(f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.monotonic() + 180
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if requests.get(f"{server.base}/ready", timeout=5).ok:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "server not ready in 180 s"
                time.sleep(0.5)
            yield server
        finally:
            stop_process(proc, grace_s=60)

    return start


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server and database for every test that runs flows (started on first use)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, and `stj` reads it as tracking.uri: a test's
    # subprocesses must not inherit the store an earlier test pointed this process at
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


REPO_ROOT = Path(__file__).resolve().parents[1]
CACHES = {"__pycache__", ".pytest_cache", ".ruff_cache"}


@pytest.fixture(scope="session", autouse=True)
def _checkout_left_as_found() -> Iterator[None]:
    """The suite writes only under temporary folders: a file or folder a test leaves at the top of the
    checkout (a default ``history.db`` or ``mlflow.db``) would also change what the next run or demo finds.
    Top level only: writes inside folders that already exist (``data/`` after a demo) are not seen."""
    before = set(os.listdir(REPO_ROOT))
    yield
    added = set(os.listdir(REPO_ROOT)) - before - CACHES
    assert not added, f"tests left these in the checkout: {sorted(added)}"
