"""Prometheus metrics pooled across gunicorn workers: each worker is a separate process writing its values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.metrics import MULTIPROC_ENV, ServerMetrics

ROOT = Path(__file__).resolve().parents[2]


def _worker(folder: Path, health_requests: int, versions: list[str]) -> None:
    """A separate process standing in for one gunicorn worker."""
    code = (
        "from serving.metrics import ServerMetrics\n"
        "m = ServerMetrics()\n"
        f"for _ in range({health_requests}): m.requests.labels('/health', '200').inc()\n"
        f"for v in {versions!r}: m.serving('stj-classifier', v)\n"
    )
    env = {**os.environ, MULTIPROC_ENV: str(folder)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)


def test_counts_and_versions_are_pooled_over_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _worker(tmp_path, 3, ["1"])  # still serves version 1
    _worker(tmp_path, 4, ["1", "2"])  # hot-reloaded to version 2
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    text = ServerMetrics().exposition().decode()
    assert 'stj_requests_total{endpoint="/health",status="200"} 7.0' in text
    assert 'stj_model_version{name="stj-classifier",version="1"} 1.0' in text  # one worker still serves it
    assert 'stj_model_version{name="stj-classifier",version="2"} 1.0' in text


def test_one_process_reports_its_own_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    metrics = ServerMetrics()
    metrics.requests.labels("/health", "200").inc()
    metrics.serving("stj-classifier", "1")
    metrics.serving("stj-classifier", "2")
    text = metrics.exposition().decode()
    assert 'stj_requests_total{endpoint="/health",status="200"} 1.0' in text
    assert 'stj_model_version{name="stj-classifier",version="1"} 0.0' in text
    assert 'stj_model_version{name="stj-classifier",version="2"} 1.0' in text
