"""Run the app under gunicorn: workers and threads from config, model loaded once per worker.

Config keys: ``serve.host``, ``serve.port``, ``serve.workers``, ``serve.threads``, ``serve.timeout_s``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from gunicorn.app.base import BaseApplication

from configs.schema import Config
from serving.metrics import MULTIPROC_ENV, mark_worker_dead


class StjServer(BaseApplication):
    """gunicorn configured from the STJ config; each worker builds its own app (and loads the model)."""

    def __init__(self, config: Config) -> None:
        self.stj_config = config
        super().__init__()

    def load_config(self) -> None:
        serve = self.stj_config.serve
        options = {
            "bind": f"{serve.host}:{serve.port}",
            "workers": serve.workers,
            "threads": serve.threads,
            "worker_class": "gthread",
            "timeout": serve.timeout_s,
            "graceful_timeout": 10,
            "accesslog": "-",
            "preload_app": False,
            "child_exit": lambda server, worker: mark_worker_dead(worker.pid),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from serving.app import create_app

        return create_app(self.stj_config)


def serve(config: Config) -> None:
    """Serve until interrupted. With several workers, Prometheus metrics are pooled in a folder that lives
    as long as the server (unless ``PROMETHEUS_MULTIPROC_DIR`` names one already)."""
    own_folder = None
    if config.serve.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        own_folder = tempfile.mkdtemp(prefix="stj-metrics-")
        os.environ[MULTIPROC_ENV] = own_folder  # before any worker imports prometheus_client
    try:
        StjServer(config).run()
    finally:
        if own_folder is not None:
            shutil.rmtree(own_folder, ignore_errors=True)
