"""A real threaded HTTP server for the local catalog on 127.0.0.1.

Routes: ``/s?k=<query>&page=<n>`` (search pages), ``/images/I/<id>[.<modifier>].jpg`` (photos; a ``_UL<n>_``
modifier bounds the longest side, no modifier is the full image), ``/robots.txt``, and ``/truth.json`` (the
listings shown under the wrong class: what a label-issue finder should find).

Config keys: ``catalog.host``, ``catalog.port``, ``catalog.image_side``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from catalog.draw import alter, draw_product
from catalog.inventory import Catalog
from catalog.markup import ROBOT_CHECK_HTML, render_search_page
from catalog.settings import CatalogConfig
from configs.files import atomic_write_bytes

log = logging.getLogger(__name__)

_IMAGE = re.compile(r"^/images/I/(?P<id>[A-Za-z0-9]+)(?:\.(?P<mod>_[A-Za-z0-9_,]+_))?\.jpg$")
_UL = re.compile(r"_UL(\d+)_")
ROBOTS_TXT = "User-agent: *\nDisallow: /gp/cart\nDisallow: /dp/*/reviews\n"


def has_fault(url: str, rate: float, kind: str) -> bool:
    """Whether ``url`` is among the fraction ``rate`` of URLs that get fault ``kind`` (deterministic)."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{kind}:{url}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


class CatalogServer(ThreadingHTTPServer):
    """The HTTP server; holds the inventory and a cache of encoded photos."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: CatalogConfig, port: int | None = None) -> None:
        self.config = config
        self.catalog = Catalog(config)
        super().__init__((config.host, config.port if port is None else port), _Handler)
        self.photo = lru_cache(maxsize=4096)(self._photo)
        self.hits: Counter[str] = Counter()  # responses served, by kind: page, image, robots, 503, captcha, ...
        self._lock = threading.Lock()
        self._seen: set[str] = set()  # URLs (and queries) already requested once, for first-request faults

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is asked about (thread-safe)."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def count(self, kind: str) -> None:
        """Count one response of ``kind``."""
        with self._lock:
            self.hits[kind] += 1

    def photo_faults_apply(self, image_id: str) -> bool:
        """Whether the photo faults may hit this photo (its listing is in ``faults.photo_fault_classes``, or
        that list is empty)."""
        scope = self.config.faults.photo_fault_classes
        product = self.catalog.by_image_id.get(image_id)
        return not scope or (product is not None and product.label in scope)

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _photo(self, image_id: str, max_side: int | None) -> bytes | None:
        product = self.catalog.by_image_id.get(image_id)
        return None if product is None else encoded_photo(self.config, product.drawing, max_side)


def encoded_photo(config: CatalogConfig, drawing: tuple[str, int, int], max_side: int | None) -> bytes:
    """One photo as JPEG bytes: ``drawing`` (label, seed, variant) drawn at ``catalog.image_side``, its longest
    side bounded by ``max_side``; read from (or written to) ``catalog.photo_cache_dir`` when one is set. Pure but
    for that cache, so several processes may draw one catalog at once (the cache's writes are atomic)."""
    label, seed, variant = drawing
    cached = None
    if config.photo_cache_dir:
        key = hashlib.sha256(repr((label, seed, variant, config.image_side, max_side)).encode()).hexdigest()
        cached = Path(config.photo_cache_dir) / f"{key[:32]}.jpg"
        if cached.exists():
            return cached.read_bytes()
    img = alter(draw_product(label, seed, config.image_side), variant)
    if max_side and max_side < max(img.size):
        img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cached, buf.getvalue())
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: CatalogServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("catalog %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        faults = self.server.config.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        url = urlsplit(self.path)
        if url.path == "/robots.txt":
            self.server.count("robots")
            extra = "".join(f"Disallow: {path}\n" for path in faults.robots_disallow)
            return self._send(200, "text/plain", (ROBOTS_TXT + extra).encode())
        if has_fault(self.path, faults.error_rate, "503") and self.server.first_time(f"503:{self.path}"):
            self.server.count("503")
            return self._send(
                status=503,
                content_type="text/html",
                body=b"<html><body>Service Unavailable</body></html>",
                headers={"Retry-After": "0"},
            )
        if url.path == "/s":
            return self._search(url.query)
        if url.path == "/truth.json":
            truth = {"mislabelled": self.server.catalog.mislabelled()}
            return self._send(200, "application/json", json.dumps(truth).encode())
        match = _IMAGE.match(url.path)
        if match:
            ul = _UL.search(match["mod"] or "")
            body = self.server.photo(match["id"], int(ul.group(1)) if ul else None)
            if body is not None:
                faulty = self.server.photo_faults_apply(match["id"])
                if faulty and has_fault(match["id"], faults.fake_image_rate, "fake"):
                    self.server.count("fake_image")
                    return self._send(200, "image/jpeg", b"<html><body>Oops, not a photo</body></html>")
                if faulty and has_fault(match["id"], faults.truncated_rate, "truncated"):
                    self.server.count("truncated_image")
                    return self._send(200, "image/jpeg", body[: len(body) // 3])
                self.server.count("image")
                return self._send(200, "image/jpeg", body)
        if url.path == "/":
            return self._send(200, "text/html", b'<a href="/s?k=saree">saree</a> <a href="/s?k=men+jeans">jeans</a>')
        self.server.count("404")
        return self._send(404, "text/html", b"<h1>Page not found</h1>")

    def _search(self, query_string: str) -> None:
        params = parse_qs(query_string)
        query = params.get("k", [""])[0]
        try:
            page = max(1, int(params.get("page", ["1"])[0]))
        except ValueError:
            page = 1
        faults = self.server.config.faults
        if faults.robot_check_first and self.server.first_time(f"captcha:{query}"):
            self.server.count("captcha")
            return self._send(200, "text/html; charset=utf-8", ROBOT_CHECK_HTML.encode())
        self.server.count("page")
        html = render_search_page(
            self.server.catalog, query, page, image_base=self.server.base_url, lazy=faults.lazy_images
        )
        return self._send(200, "text/html; charset=utf-8", html.encode())

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def running_catalog(config: CatalogConfig, port: int | None = None) -> Iterator[CatalogServer]:
    """Serve the catalog in a background thread for the duration of the ``with`` block.

    Args:
        config: catalog settings.
        port: overrides ``config.port``; ``0`` picks a free port.
    """
    server = CatalogServer(config, port)
    thread = threading.Thread(target=server.serve_forever, name="stj-catalog", daemon=True)
    thread.start()
    log.info("local catalog serving at %s", server.base_url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def is_serving(base_url: str, timeout_s: float = 1.0) -> bool:
    """Whether something at ``base_url`` answers ``/robots.txt``."""
    import requests

    try:
        return requests.get(base_url.rstrip("/") + "/robots.txt", timeout=timeout_s).ok
    except requests.RequestException:
        return False


@contextmanager
def catalog_for(config: CatalogConfig, base_url: str) -> Iterator[str]:
    """Use the catalog already answering at ``base_url``, or serve one there for the ``with`` block.

    Yields:
        The base URL to scrape.
    """
    if is_serving(base_url):
        log.info("using the catalog already running at %s", base_url)
        yield base_url
        return
    port = urlsplit(base_url).port or config.port
    with running_catalog(config, port=port) as server:
        yield server.base_url
