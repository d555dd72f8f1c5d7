"""Shared fixtures: tiny configs rooted in a temporary folder, a real local catalog server, a small real
predictor, and one Prefect test harness for the whole session.

Test folders by purpose: ``code`` (units, no network), ``scraper`` (the scraper against the real local
catalog), ``data`` (quality of a scraped data set: any manifest + split), ``training`` (training mechanics),
``model`` (behaviour of a trained model), ``flows`` (Prefect tasks through ``.fn()``), ``serving`` (the
HTTP API), ``browser`` (the page in headless Chromium), ``e2e`` (Prefect -> MLflow -> gunicorn).

Tiers: tests marked ``slow`` (a pipeline run, a subprocess of ``stj``, a server, a Prefect server, a model
bigger than a tiny one) or ``browser`` are left out of ``make test-fast``. The whole-pipeline tests share one
reference run per session (:func:`reference`); subprocesses of ``stj`` report to the session's Prefect server
(:func:`stj_env`) instead of starting one each.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As `stj` sets them before Prefect is imported (flows.cli.quiet_environment): the reference run's output is
# then what a user's run prints.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Results Prefect persists (the cached split) go to a folder of this test session, not the user's
# ~/.prefect/storage; subprocesses inherit it; removed when the session ends.
_PREFECT_STORAGE = tempfile.mkdtemp(prefix="stj-test-prefect-storage-")
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = _PREFECT_STORAGE
atexit.register(shutil.rmtree, _PREFECT_STORAGE, ignore_errors=True)

import json  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pytest  # noqa: E402

from catalog import CatalogServer, running_catalog  # noqa: E402
from catalog.settings import CatalogConfig  # noqa: E402
from configs.schema import CLASS_NAMES_DEFAULT  # noqa: E402
from core.processes import stop_process  # noqa: E402
from flows.settings import RunConfig, load_run_config  # noqa: E402
from tests.registry import Registry, make_registry  # noqa: E402
from tests.support import (  # noqa: E402
    REFERENCE_EXTRAS,
    SERVING_ON,
    WORKER_READY,
    Child,
    Output,
    artifact_of,
    child_env,
    end_group,
    stj_command,
    unmeasured,
    watched_output,
)


def pytest_configure(config: pytest.Config) -> None:
    """A runner started in the background (a CI job, ``nohup``, ``cmd &`` in a script) inherits SIGINT
    *ignored*, and an ignored signal stays ignored in every child: the Ctrl-C tests would then send a signal
    that nobody receives. The suite and its children get Python's default Ctrl-C instead."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# A test that uses any of these is slow, whatever its file says: they run the pipeline, start `stj`, a server
# or a Prefect server.
SLOW_FIXTURES = {"reference", "stj", "stj_env", "launch", "serve_subprocess", "stj_server", "prefect_harness"}


# The modules whose tests read the session's reference run: under pytest-xdist they all go to one worker, so
# that the run is made once (a session fixture is built once per worker).
REFERENCE_MODULES = {
    "tests/browser/test_mlflow_ui.py",
    "tests/e2e/test_dask.py",
    "tests/e2e/test_monitor.py",
    "tests/e2e/test_pipeline.py",
    "tests/e2e/test_review.py",
    "tests/e2e/test_verbs.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that uses a slow fixture (the fast tier is what is left); a test that reads
    the reference run outside :data:`REFERENCE_MODULES` is a mistake that would build the run twice."""
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
        if "reference" in item.fixturenames and item.nodeid.split("::")[0] not in REFERENCE_MODULES:
            raise pytest.UsageError(f"{item.nodeid} uses the reference run: add its module to REFERENCE_MODULES")


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` with the reference run's modules as one scope and every other module as its own
    (pytest-xdist's ``xdist_group`` marks are lost under pytest 9: they rename ``item._nodeid``)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModuleAndReference(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "reference" if module in REFERENCE_MODULES else module

        def _assign_work_unit(self, node) -> None:
            # longest first, so that the last scopes to start are short ones and both workers end together
            # (xdist's own order is by number of tests: a one-test module of five minutes would start last)
            if not self.ordered:
                units = sorted(self.workqueue.items(), key=lambda unit: -SCOPE_SECONDS.get(unit[0], len(unit[1])))
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True
            super()._assign_work_unit(node)

    return ByModuleAndReference(config, log)


# What the slowest scopes take on 2 cores under the whole suite (measured 2026-12-02); others count a second a
# test. Only the order they give matters: a wrong figure costs balance, never a result.
SCOPE_SECONDS = {
    "reference": 900,
    "tests/e2e/test_interrupts.py": 350,
    "tests/e2e/test_team.py": 300,
    "tests/serving/test_model_swaps.py": 250,
    "tests/training/test_runtime.py": 240,
    "tests/e2e/test_prefect_server.py": 110,
    "tests/serving/test_hostile_clients.py": 100,
}


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
        "train.compare_backbones": "[]",  # one backbone; the reference run trains two
        "labels.enabled": "false",  # no k-fold; the reference run and the label-issue test check them
        "tracking.imagenet_model": "",  # registered by the reference run only
        "tracking.uri": f"sqlite:///{root / 'mlflow.db'}",
        "tracking.artifact_dir": str(root / "mlartifacts"),
        "tracking.experiment": "stj-test",
        "serve.runtime": "tensorflow",
        "serve.database_url": f"sqlite:///{root / 'history.db'}",
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
    """Build a small real predictor (a random ResNet50 at 32 px, TensorFlow), as version ``version``, with the
    "none of these" index ``ood`` if given."""
    from core.logged_model import LoggedModel
    from core.model import build_classifier, build_frozen, build_head
    from serving.predictor import ModelRef, Predictor

    embedder = build_frozen("resnet50", 32, seed=0)[1]

    def make(version: str = "1", ood=None) -> Predictor:
        features = np.random.default_rng(0).normal(size=(8, 2048)).astype("float32")
        head = build_head(len(CLASSES), (16, 8), (0.3, 0.2), features)
        logged = LoggedModel(build_classifier(embedder, head), CLASSES, 32, run_id=None, ood=ood)
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


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    """A small valid JPEG upload."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 60, 200)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Registry:
    """A real MLflow store with version 1 of the tiny model at ``champion``; ``overrides`` serve it."""
    return make_registry(tmp_path_factory.mktemp("registry"))


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


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """Start a command in a session of its own (so that a signal to its group is a terminal's Ctrl-C), its
    output copied to ``tmp_path / log``; whatever still runs at the test's end is stopped."""
    started: list[subprocess.Popen] = []

    def start(command: list[str], log: str = "out.log", env: dict[str, str | None] | None = None) -> Child:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            env=child_env(env),
        )
        started.append(proc)
        return Child(proc, Output(proc.stdout, tmp_path / log))

    yield start
    for proc in started:
        end_group(proc)


@pytest.fixture(scope="session")
def stj_env(prefect_harness) -> dict[str, str]:
    """The environment of the suite's ``stj`` subprocesses: they report to the session's Prefect server
    rather than each starting a temporary one (~30 s each). Tests of the temporary server remove it."""
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": PREFECT_API_URL.value()}


@pytest.fixture(scope="session")
def stj(stj_env) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``stj ARGS`` with ``--set`` for each override and wait; output captured."""

    def run(
        args: list[str], overrides: Iterable[str] = (), env: dict[str, str | None] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            stj_command(args, overrides),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(stj_env, env),
            stdin=subprocess.DEVNULL,
        )

    return run


@dataclass
class RunningServer:
    """`stj serve` in a subprocess, answering at ``base``."""

    base: str
    child: Child

    @property
    def proc(self) -> subprocess.Popen:
        """The `stj serve` process (gunicorn's master)."""
        return self.child.proc

    def family(self) -> list[psutil.Process]:
        """The server and everything below it (gunicorn workers, nginx, the watchdog)."""
        return self.child.family()


@pytest.fixture
def serve_subprocess(launch) -> Callable[..., object]:
    """Start `stj serve --config configs/demo.yaml --port 0` with ``--set`` overrides. The server picks a free
    port and prints it; the test reads that line, then waits until each worker logged itself ready (its app and every model it follows loaded).
    Stopped (SIGTERM, then SIGKILL) when the ``with`` block ends."""

    @contextmanager
    def start(overrides: list[str], env: dict[str, str | None] | None = None, workers: int = 1):
        sets = [*overrides, f"serve.workers={workers}"]
        child = launch(stj_command(["serve", "--config", "configs/demo.yaml", "--port", "0"], sets), "serve.log", env)
        try:
            base = child.output.wait_for(SERVING_ON, timeout=180).group(1)
            child.output.wait_for(WORKER_READY, timeout=180, count=workers)
            yield RunningServer(base, child)
        finally:
            stop_process(child.proc, grace_s=60)

    return start


@pytest.fixture(scope="session")
def app_for() -> Callable[..., object]:
    """``app_for(folder, predictor=None, *overrides, imagenet=None)``: the Flask app on the demo config with
    ``overrides``, its accounts, history and (unless overridden) MLflow store in ``folder``; with no predictor
    it loads the configured models."""
    from serving.app import create_app

    def build(folder: Path, predictor=None, *overrides: str, imagenet=None):
        rooted = [
            "serve.max_wait_ms=1",
            f"serve.database_url=sqlite:///{folder / 'history.db'}",
            # the review page reads the served run's label issues from the store: never the checkout's mlflow.db
            f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
            f"tracking.artifact_dir={folder / 'mlartifacts'}",
        ]
        config = load_run_config("configs/demo.yaml", [*rooted, *overrides])
        return create_app(config, predictor, imagenet=imagenet)

    return build


@pytest.fixture(scope="session")
def new_postgres_database() -> Iterator[Callable[[], str]]:
    """A PostgreSQL cluster made as ``make team-up`` makes it (Debian's binaries, password authentication) in
    a temporary folder, for the session (started on first use); calling the fixture makes a new, empty
    database and returns its URL."""
    import psycopg2

    from core.processes import free_port
    from team.postgres import start_postgres, stop_postgres
    from team.settings import Team

    folder = Path(tempfile.mkdtemp(prefix="stj-pg-"))  # not tmp_path: PostgreSQL runs as its own user
    folder.chmod(0o755)
    team = Team(folder, free_port(), 0, 0, 0)
    made = []
    try:
        with unmeasured():
            password = start_postgres(team)["PGPASSWORD"]

        def new() -> str:
            name = f"stj_test_{len(made) + 1}"
            admin = psycopg2.connect(host="127.0.0.1", port=team.pg_port, user="postgres", password=password,
                                     dbname="postgres")  # fmt: skip
            admin.autocommit = True
            try:
                admin.cursor().execute(f"CREATE DATABASE {name}")
            finally:
                admin.close()
            made.append(name)
            return f"postgresql://postgres:{password}@127.0.0.1:{team.pg_port}/{name}"

        yield new
    finally:
        stop_postgres(team)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server and database for every test that runs flows (started on first use)."""
    from prefect.testing.utilities import prefect_test_harness

    harness = prefect_test_harness(server_startup_timeout=120)
    with unmeasured():
        harness.__enter__()
    try:
        yield
    finally:
        harness.__exit__(None, None, None)


@dataclass(frozen=True)
class Reference:
    """The session's one tiny pipeline run: its config (and the overrides that make it), the pipeline's
    summary, and its Prefect flow run. Tests that add runs or versions use an experiment or a model name of
    their own, so that what this run recorded stays what they and the others read."""

    config: RunConfig
    overrides: list[str]
    summary: dict
    flow_run_id: str
    output: list[str]  # what it printed beyond progress: warnings, errors, native log lines (watched_output)

    @property
    def data_dir(self) -> Path:
        """The run's data folder (photos, manifest, split, embedding cache)."""
        return Path(self.config.project.data_dir)

    def artifact(self, key: str) -> str:
        """The data of the Prefect artifact ``key`` made by this run or one of its stages' flow runs."""
        return artifact_of(self.flow_run_id, key).data


@pytest.fixture(scope="session")
def scraped(tmp_path_factory) -> Callable[[Path], Path]:
    """One tiny scrape per session (per xdist worker): ``scraped(root)`` copies its photos and manifest to
    ``root / "data"`` and returns that folder, so that a run there starts where a scrape left off (its own
    scrape then finds every photo known). The commands under test start from it; only a test that interrupts a
    scrape starts empty."""
    from catalog import running_catalog
    from scraper.scrape import scrape

    source = tmp_path_factory.mktemp("scraped")
    config = load_run_config("configs/demo.yaml", tiny_overrides(source))
    with running_catalog(config.catalog, port=0) as catalog:  # the catalog a tiny run starts itself
        scrape(config, base_url=catalog.base_url, show_progress=False)

    def copy_to(root: Path) -> Path:
        data = root / "data"
        shutil.copytree(source / "data" / "raw", data / "raw")
        shutil.copy2(source / "data" / "manifest.csv", data / "manifest.csv")
        return data

    return copy_to


@pytest.fixture(scope="session")
def reference(tmp_path_factory, prefect_harness) -> Reference:
    """Run the parent flow once per session on the tiny catalog (the scrape flow starts the catalog itself)."""
    from core.processes import free_port
    from flows.cli import quiet_environment
    from flows.pipeline import pipeline

    root = tmp_path_factory.mktemp("reference")
    overrides = [*tiny_overrides(root), *REFERENCE_EXTRAS, f"scrape.base_url=http://127.0.0.1:{free_port()}"]
    config = load_run_config("configs/demo.yaml", overrides)
    quiet_environment()  # the filters `stj` installs
    output: list[str] = []
    with watched_output(output):
        state = pipeline(config, config_source="configs/demo.yaml", return_state=True)
    return Reference(config, overrides, state.result(), str(state.state_details.flow_run_id), output)


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
