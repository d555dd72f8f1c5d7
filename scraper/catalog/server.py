"""A real threaded HTTP server for the local catalog on 127.0.0.1.

Routes: ``/s?k=<query>&page=<n>`` (search pages), ``/images/I/<id>[.<modifier>].jpg`` (photos; a ``_UL<n>_``
modifier bounds the longest side, no modifier is the full image), ``/robots.txt``.

Config keys: ``catalog.host``, ``catalog.port``, ``catalog.image_side``.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from configs.schema import CatalogConfig
from scraper.catalog.draw import draw_product
from scraper.catalog.pages import Catalog, render_search_page

log = logging.getLogger(__name__)

_IMAGE = re.compile(r"^/images/I/(?P<id>[A-Za-z0-9]+)(?:\.(?P<mod>_[A-Za-z0-9_,]+_))?\.jpg$")
_UL = re.compile(r"_UL(\d+)_")
ROBOTS_TXT = "User-agent: *\nDisallow: /gp/cart\nDisallow: /dp/*/reviews\nAllow: /s\nAllow: /images/\n"


class CatalogServer(ThreadingHTTPServer):
    """The HTTP server; holds the inventory and a cache of encoded photos."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: CatalogConfig, port: int | None = None) -> None:
        self.config = config
        self.catalog = Catalog(config)
        super().__init__((config.host, config.port if port is None else port), _Handler)
        self.photo = lru_cache(maxsize=4096)(self._photo)
        self.hits: Counter[str] = Counter()  # requests served, by kind: page, image, robots

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _photo(self, image_id: str, max_side: int | None) -> bytes | None:
        product = self.catalog.by_image_id.get(image_id)
        if product is None:
            return None
        img = draw_product(product.label, product.seed, self.config.image_side)
        if max_side and max_side < max(img.size):
            img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: CatalogServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("catalog %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        if url.path == "/robots.txt":
            self.server.hits["robots"] += 1
            return self._send(200, "text/plain", ROBOTS_TXT.encode())
        if url.path == "/s":
            params = parse_qs(url.query)
            query = params.get("k", [""])[0]
            try:
                page = max(1, int(params.get("page", ["1"])[0]))
            except ValueError:
                page = 1
            self.server.hits["page"] += 1
            html = render_search_page(self.server.catalog, query, page, image_base=self.server.base_url)
            return self._send(200, "text/html; charset=utf-8", html.encode())
        match = _IMAGE.match(url.path)
        if match:
            ul = _UL.search(match["mod"] or "")
            body = self.server.photo(match["id"], int(ul.group(1)) if ul else None)
            if body is not None:
                self.server.hits["image"] += 1
                return self._send(200, "image/jpeg", body)
        if url.path == "/":
            return self._send(200, "text/html", b'<a href="/s?k=saree">saree</a> <a href="/s?k=men+jeans">jeans</a>')
        return self._send(404, "text/html", b"<h1>Page not found</h1>")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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
