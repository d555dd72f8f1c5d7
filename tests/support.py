"""Helpers the fixtures share (tests/conftest.py) and tests import: the `stj` command line, a child process's
environment, and its output read line by line."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

# What the tiny run leaves out and the reference run checks: a second backbone, the k-fold label check, the
# ImageNet model; batches of 8, as the Dask test's shards embed them.
REFERENCE_EXTRAS = [
    "train.compare_backbones=[efficientnet_lite0]",
    "labels.enabled=true",
    "tracking.imagenet_model=imagenet-classifier",
    "train.embed_batch_size=8",
]
SAME_ORIGIN = {"Origin": "http://localhost"}  # what a browser sends from the server's own page
PASSWORD = "correct horse battery"  # a password the policy accepts


def noise_jpeg(seed: int = 0, side: int = 64) -> bytes:
    """A JPEG of random pixels: each seed a different photo (and SHA-256)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


SERVING_ON = r"stj: serving on (http://\S+)"  # what `stj serve` prints once nginx listens
WORKER_READY = r"worker \d+ ready"  # a gunicorn worker's line once its app and every model it follows loaded


class Output:
    """What a child process prints, copied line by line to ``log`` by a thread, so a test waits for a line (an
    event) instead of polling a file."""

    def __init__(self, stream, log: Path) -> None:
        self.log, self.lines, self.ended = log, [], False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._copy, args=(stream,), daemon=True)
        self._thread.start()

    def _copy(self, stream) -> None:
        with self.log.open("w") as out:
            for line in stream:
                out.write(line)
                out.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def text(self) -> str:
        """Everything printed so far."""
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 300, count: int = 1) -> re.Match:
        """The ``count``-th match of the regular expression ``pattern`` in a line; fails when the process
        ends or ``timeout`` passes first, with what it printed."""
        regex = re.compile(pattern)

        def found() -> list[re.Match]:
            return [m for m in map(regex.search, self.lines) if m]

        with self._changed:
            self._changed.wait_for(lambda: len(found()) >= count or self.ended, timeout)
            matches = found()
            if len(matches) >= count:
                return matches[count - 1]
            tail = "".join(self.lines)[-3000:]
        state = "ended" if self.ended else f"still running after {timeout:g} s"
        pytest.fail(f"no line matching {pattern!r} (x{count}); the process {state}:\n{tail}")

    def join(self, timeout: float = 30) -> str:
        """Wait for the stream's end (the process closed it); everything printed."""
        self._thread.join(timeout)
        return self.text()


@dataclass
class Child:
    """A process a test started: ``proc``, its ``output``, and what ran below it."""

    proc: subprocess.Popen
    output: Output

    def family(self) -> list[psutil.Process]:
        """The process and everything below it."""
        parent = psutil.Process(self.proc.pid)
        return [parent, *parent.children(recursive=True)]


def wait_until(check, what: str, seconds: float = 60) -> None:
    """Poll ``check()`` every 20 ms until it is true (a state only a query can tell); fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def ready_state(base: str) -> dict:
    """What a running server's ``/ready`` says now (its model, its challenger, the last reload error)."""
    import requests

    return requests.get(f"{base}/ready", timeout=10).json()


def stj_command(args: Iterable[str], overrides: Iterable[str] = ()) -> list[str]:
    """``stj ARGS --set K=V ...`` as this interpreter runs it (``python -m flows.cli``)."""
    return [sys.executable, "-m", "flows.cli", *args, *(arg for o in overrides for arg in ("--set", o))]


def child_env(*extras: dict[str, str | None] | None) -> dict[str, str]:
    """This process's environment with ``extras`` on top; a ``None`` value removes the variable."""
    merged = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    merged.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a server makes its own folder for several workers
    for extra in extras:
        merged.update(extra or {})
    return {k: v for k, v in merged.items() if v is not None}


def end_group(proc: subprocess.Popen, grace_s: float = 60) -> None:
    """Stop a child started in a session of its own, and everything in it: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def artifact_of(flow_run_id: str, key: str):
    """The Prefect artifact ``key`` made by the flow run ``flow_run_id`` or one of its stages' flow runs (not
    "the newest": other tests' runs make artifacts of the same key)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        parent = FlowRunFilterParentFlowRunId(any_=[flow_run_id])
        stages = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))
        runs = ArtifactFilterFlowRunId(any_=[flow_run_id, *(run.id for run in stages)])
        (found,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]), flow_run_id=runs)
        )
    return found


UNMEASURED = {"COVERAGE_PROCESS_CONFIG": None}  # a child without it is not measured by `make test`'s coverage


@contextmanager
def unmeasured() -> Iterator[None]:
    """Python processes started in the block are not measured by coverage (its subprocess patch hands its
    settings down in :data:`UNMEASURED`'s variable): for servers that run none of the product's code, where
    measuring only slows every request."""
    saved = os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["COVERAGE_PROCESS_CONFIG"] = saved


class _Records(logging.Handler):
    """Every record at WARNING or above, as ``LEVEL logger: message`` (with its traceback when it has one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(line)


@contextmanager
def watched_output(into: list[str]) -> Iterator[None]:
    """What a user would see of the block's run beyond its progress, appended to ``into``: log records at
    WARNING and above (STJ's, Prefect's, the libraries'), Python warnings that pass the filters in force, and
    the lines native code writes to file descriptor 2 (TensorFlow's and OpenVINO's C++ log lines, a native
    traceback). Memory: O(what was written to fd 2 + records kept)."""
    records = _Records()
    watched = [logging.getLogger(), logging.getLogger("prefect")]  # Prefect's loggers do not propagate
    for logger in watched:
        logger.addHandler(records)
    native = tempfile.TemporaryFile()
    sys.stderr.flush()
    saved_fd = os.dup(2)
    os.dup2(native.fileno(), 2)
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        for logger in watched:
            logger.removeHandler(records)
        native.seek(0)
        written = native.read().decode(errors="replace")
        native.close()
        sys.stderr.write(written)  # still shown where the run's output goes
        into.extend(records.lines)
        into.extend(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught)
        into.extend(line for line in written.splitlines() if line.strip())
