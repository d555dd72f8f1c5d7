"""Run the app under gunicorn: workers and threads from config, model loaded once per worker.

Config keys: ``serve.host``, ``serve.port``, ``serve.workers``, ``serve.threads``, ``serve.timeout_s``.
"""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from configs.schema import Config


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
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from serving.app import create_app

        return create_app(self.stj_config)


def serve(config: Config) -> None:
    """Serve until interrupted."""
    StjServer(config).run()
