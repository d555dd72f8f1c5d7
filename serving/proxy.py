"""nginx in front of gunicorn: the buffering reverse proxy gunicorn's documentation asks for.

nginx reads each request whole — headers and body, within ``serve.client_timeout_s`` of silence — before
gunicorn sees it, so slow or stalled clients hold an nginx connection (cheap, event-driven), never one of
gunicorn's few threads. It also answers what goes wrong before Flask — malformed HTTP, bodies over the
limit (chunked ones included), headers too large, gunicorn unreachable — in the API's JSON error shape.
gunicorn listens on a unix socket in a private folder that lives as long as the server.

Config keys: ``serve.proxy``, ``serve.host``, ``serve.port``, ``serve.client_timeout_s``,
``serve.max_upload_bytes``, ``serve.max_files``, ``serve.timeout_s``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from configs.errors import UserError
from configs.schema import ServeConfig
from core.processes import die_with_parent, free_port, stop_process
from serving.errors import error_body
from serving.security import SECURITY_HEADERS

log = logging.getLogger(__name__)
NGINX = "nginx"
# Debian's libnginx-mod-http-headers-more-filter: the only way to send no Server header at all
HEADERS_MORE = Path("/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so")
FOLDER_PREFIX, OWNER_FILE = "stj-serve-", "owner.pid"
# nginx drops an idle connection to gunicorn after this long; gunicorn must wait longer (GUNICORN_IDLE_S), or
# nginx may send a request on a connection gunicorn is closing, and its client gets a 502
UPSTREAM_IDLE_S = 60
GUNICORN_IDLE_S = UPSTREAM_IDLE_S + 15
# what nginx itself may answer, and how the API names it
_ERRORS = {
    400: ("bad_request", "the request is not valid HTTP"),
    408: ("request_timeout", "the request was not sent in time"),
    411: ("length_required", "a body needs Content-Length or chunked encoding"),
    413: ("request_entity_too_large", "the upload is larger than this server accepts (see GET /metadata)"),
    405: ("method_not_allowed", "this server does not take that method"),
    414: ("uri_too_long", "the URL is too long"),
    494: ("request_header_too_large", "the request headers are too large"),
    500: ("internal_error", "the server failed to handle this request"),
    501: ("not_implemented", "that transfer encoding or method is not supported"),
    502: ("unavailable", "the model server is not answering; try again shortly"),
    503: ("unavailable", "the model server is not answering; try again shortly"),
    504: ("timeout", "the model server did not answer in time"),
    505: ("http_version_not_supported", "speak HTTP/1.x to this server"),
}


class ProxyError(UserError):
    """nginx is missing or could not start (the message says which and what to do)."""


@dataclass(frozen=True)
class Proxy:
    """A running nginx: where clients reach it and where it forwards to."""

    url: str
    upstream: str  # gunicorn's bind address, ``unix:/…``


def nginx_config(serve: ServeConfig, folder: Path, socket_path: Path, port: int) -> str:
    """The nginx configuration for ``serve``: its own pid/temp paths under ``folder``, JSON error pages."""
    framing = 65536  # multipart boundaries and form fields around the photos
    single, batch = serve.max_upload_bytes + framing, serve.max_upload_bytes * serve.max_files + framing
    timeout = f"{serve.client_timeout_s:g}s"
    pages = "".join(f"        error_page {status} /_stj_errors/{status}.json;\n" for status in _ERRORS)
    # nginx's own answers carry the headers the app puts on its own (the app's pass through untouched)
    headers = "".join(f' add_header {name} "{value}" always;' for name, value in SECURITY_HEADERS.items())
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the private folder
    module, no_banner = "", ""
    if HEADERS_MORE.exists():
        module, no_banner = f"load_module {HEADERS_MORE};\n", "    more_clear_headers Server;\n"
    return f"""{module}{user}worker_processes 1;
daemon off;
pid {folder / "nginx.pid"};
error_log stderr error;  # refused requests and upstream failures (a 502's cause), read by the server
events {{ worker_connections 1024; }}
http {{
    access_log off;
    server_tokens off;
{no_banner}{temp}
    client_header_timeout {timeout};
    client_body_timeout {timeout};
    send_timeout {timeout};
    keepalive_timeout 15s;
    client_max_body_size {single};
    client_body_buffer_size 1m;
    large_client_header_buffers 4 16k;
    upstream stj {{ server unix:{socket_path}; keepalive 16; keepalive_timeout {UPSTREAM_IDLE_S}s; }}
    server {{
        listen {f"[{serve.host}]" if ":" in serve.host else serve.host}:{port};
        proxy_request_buffering on;
        proxy_buffering on;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout {serve.timeout_s}s;
        location / {{ proxy_pass http://stj; }}
        location = /predict/batch {{ client_max_body_size {batch}; proxy_pass http://stj; }}
{pages}        location ^~ /_stj_errors/ {{ internal; alias {folder / "errors"}/; default_type application/json;{headers} }}
    }}
}}
"""


def write_error_pages(folder: Path) -> None:
    """One JSON body per status nginx may answer itself (served with that status by ``error_page``)."""
    folder.mkdir()
    for status, (code, message) in _ERRORS.items():
        (folder / f"{status}.json").write_text(json.dumps(error_body(code, message)))


@contextmanager
def running_proxy(serve: ServeConfig) -> Iterator[Proxy]:
    """Start nginx for ``serve`` (stopped, and its folder removed, on exit); gunicorn binds ``upstream``.
    Folders left by a server killed with SIGKILL are removed first."""
    binary = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/sbin")
    if binary is None:
        raise ProxyError(
            "serve.proxy is nginx but nginx is not installed (apt-get install nginx-light, or `make system-deps`); "
            "set serve.proxy: none to let gunicorn face clients directly"
        )
    remove_stale_folders()
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    proc = None
    try:
        (folder / OWNER_FILE).write_text(str(os.getpid()))
        if os.geteuid() == 0:
            folder.chmod(0o711)
        socket_path = folder / "gunicorn.sock"
        conf = folder / "nginx.conf"
        port = serve.port or free_port(serve.host)  # 0: any free port, chosen here so it can be told
        conf.write_text(nginx_config(serve, folder, socket_path, port))
        write_error_pages(folder / "errors")
        proc = subprocess.Popen(
            [binary, "-e", "stderr", "-p", str(folder), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        errors = NginxLog(proc.stderr)
        _wait_listening(proc, errors, serve.host, port)
        yield Proxy(url=f"http://{serve.host}:{port}", upstream=f"unix:{socket_path}")
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_folders() -> None:
    """Remove the private folders of servers that are gone (killed before they could clean up)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if not psutil.pid_exists(owner):
            shutil.rmtree(folder, ignore_errors=True)


# "2026/12/02 12:00:00 [error] 41#41: *7 upstream prematurely closed …": the time and pids go
_NGINX_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: (?:\*\d+ )?")


class NginxLog:
    """nginx's error log (its stderr), read line by line in a thread: each line is logged as a warning
    (``nginx: [error] …``), and the last few are kept to explain a failed start. Reading it always means
    nginx never blocks on a full pipe."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.last: deque[str] = deque(maxlen=5)
        self._reader = threading.Thread(target=self._read, args=(stream,), name="stj-nginx-log", daemon=True)
        self._reader.start()

    def last_words(self) -> str | None:
        """The last line nginx wrote before it exited (``None`` if it wrote none)."""
        self._reader.join(5)  # its stderr closes when it exits: the reader has everything then
        return self.last[-1] if self.last else None

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                line = _NGINX_PREFIX.sub(r"\1 ", raw.decode("utf-8", "replace").rstrip())
                self.last.append(line)
                log.warning("nginx: %s", line)


def _wait_listening(proc: subprocess.Popen, errors: NginxLog, host: str, port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            reason = errors.last_words() or f"exit code {proc.returncode}"
            raise ProxyError(f"nginx could not start on {host}:{port}: {reason}")
        try:
            with socket.create_connection((host if host not in ("0.0.0.0", "::") else "localhost", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ProxyError(f"nginx did not listen on {host}:{port} within {seconds:g} s")
