"""Run the app under gunicorn, behind nginx by default: workers and threads from config, model loaded once
per worker.

With ``serve.proxy: nginx`` (the default) nginx listens on ``serve.host:serve.port`` and buffers every
request before gunicorn sees it (``serving.proxy``); gunicorn then listens on a private unix socket. With
``none`` gunicorn listens itself (put it behind your own buffering proxy). Either way, errors gunicorn
produces before Flask (malformed HTTP) are JSON, like the API's.

Config keys: ``serve.host``, ``serve.port``, ``serve.workers``, ``serve.threads``, ``serve.timeout_s``,
``serve.proxy``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack

import gunicorn.util
from gunicorn.app.base import BaseApplication
from gunicorn.http.wsgi import Response as GunicornResponse
from gunicorn.workers.gthread import ThreadWorker

from configs.schema import Config
from core.processes import free_port
from serving.errors import error_body
from serving.metrics import MULTIPROC_ENV, mark_worker_dead
from serving.proxy import GUNICORN_IDLE_S, running_proxy
from serving.security import SECURITY_HEADERS, exposure_warning

_gunicorn_headers = GunicornResponse.default_headers


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error response (bad request line, headers too large, …) in the API's JSON shape."""
    body = json.dumps(error_body(reason.lower().replace(" ", "_"), mesg or reason)).encode()
    security = "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items())
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"{security}Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)


def headers_without_banner(response: GunicornResponse) -> list[str]:
    """gunicorn's status line and default headers, less ``Server: gunicorn`` (no banner for scanners)."""
    return [line for line in _gunicorn_headers(response) if not line.startswith("Server:")]


class StjWorker(ThreadWorker):
    """gunicorn's threaded worker, except that a stop (a terminal's Ctrl-C, the master's SIGQUIT) arriving
    while the worker still loads its models only marks it to end. gunicorn's own handler exits from inside
    the signal handler, which can land in the middle of threading's internals (``RuntimeError: release
    unlocked lock``) and fail the boot with a traceback. Once booted, a stop is handled as gunicorn does."""

    def handle_quit(self, sig, frame) -> None:
        """Stop now once booted; while booting, end when the boot is done (the master kills a slow one)."""
        if self.booted:
            super().handle_quit(sig, frame)
        else:
            self.alive = False


class StjServer(BaseApplication):
    """gunicorn configured from the STJ config; each worker builds its own app (and loads the model)."""

    def __init__(self, config: Config, bind: str, proxied: bool) -> None:
        self.stj_config, self.bind, self.proxied = config, bind, proxied
        super().__init__()

    def load_config(self) -> None:
        serve = self.stj_config.serve
        options = {
            "bind": self.bind,
            "workers": serve.workers,
            "threads": serve.threads,
            "worker_class": StjWorker,
            "timeout": serve.timeout_s,
            "graceful_timeout": 5,  # in-flight requests finish; a stop never waits longer
            "accesslog": "-",
            # gunicorn's default less %(u)s, the Basic-auth user name: a token sent as one (curl -u TOKEN:)
            # must never reach a log
            "access_log_format": '%(h)s %(l)s - %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
            "preload_app": False,
            "child_exit": lambda server, worker: mark_worker_dead(worker.pid),
            # after the app (and every model it follows) is loaded: from this line on the worker answers
            "post_worker_init": lambda worker: worker.log.info("worker %s ready", worker.pid),
            # gunicorn 25+ opens a control socket at one fixed path per user (~/.gunicorn/gunicorn.ctl): two
            # servers would take it from each other, and STJ stops its server with signals anyway
            "control_socket_disable": True,
        }
        if self.proxied:
            options["forwarded_allow_ips"] = "*"  # only nginx can reach the private socket
            options["keepalive"] = GUNICORN_IDLE_S  # nginx closes its idle connections first
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from serving.app import create_app

        return create_app(self.stj_config)


def run_master(server: StjServer) -> None:
    """Run gunicorn's master. Its workers are forks of this process: when one exits, gunicorn raises
    ``SystemExit`` in it, which would unwind through the caller's ``with`` blocks and run the master's
    clean-up (stop nginx, remove folders) from the worker. A worker ends here instead."""
    master = os.getpid()
    try:
        server.run()
    except SystemExit as exc:
        if os.getpid() != master:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        raise


def serve(config: Config) -> None:
    """Serve until interrupted (nginx first, when configured). With several workers, Prometheus metrics are
    pooled in a folder that lives as long as the server (unless ``PROMETHEUS_MULTIPROC_DIR`` names one)."""
    gunicorn.util.write_error = write_json_error  # gunicorn looks it up here for every error it answers
    GunicornResponse.default_headers = headers_without_banner
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in the server log
    serve_config = config.serve
    if warning := exposure_warning(serve_config):
        print(f"\n{'!' * 80}\nstj: {warning}\n{'!' * 80}\n", file=sys.stderr, flush=True)
    with ExitStack() as stack:
        if config.serve.workers > 1 and not os.environ.get(MULTIPROC_ENV):
            folder = tempfile.mkdtemp(prefix="stj-metrics-")
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            os.environ[MULTIPROC_ENV] = folder  # before any worker imports prometheus_client
        if serve_config.proxy == "nginx":
            proxy = stack.enter_context(running_proxy(serve_config))
            print(f"stj: serving on {proxy.url} (nginx in front of gunicorn)", flush=True)
            run_master(StjServer(config, bind=proxy.upstream, proxied=True))
        else:
            port = serve_config.port or free_port(serve_config.host)  # 0: any free port, chosen here to be told
            host = f"[{serve_config.host}]" if ":" in serve_config.host else serve_config.host
            print(f"stj: serving on http://{host}:{port} (gunicorn, no proxy)", flush=True)
            run_master(StjServer(config, bind=f"{host}:{port}", proxied=False))
