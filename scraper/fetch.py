"""HTTP fetching with politeness built in: timeouts, retries with backoff, per-host delay and concurrency
(``scraper.politeness``), robots.txt.

Config keys: ``scrape.timeout_s``, ``scrape.retries``, ``scrape.obey_robots``, ``scrape.user_agent``,
``scrape.concurrency``; those of ``scraper.politeness``.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.robotparser
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from configs.schema import ScrapeConfig
from scraper.politeness import HostState, HostThrottle
from scraper.robot_check import is_robot_check

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class FetchError(RuntimeError):
    """A URL could not be fetched after retries, or robots.txt forbids it; ``status`` is the last HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def browser_headers(user_agent: str) -> dict[str, str]:
    """The header set a desktop browser sends with a page request."""
    return {
        "User-Agent": user_agent,
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        "Accept-Language": "en-IN,en;q=0.9",
        "Accept-Encoding": "gzip, deflate",
        "Connection": "keep-alive",
        "Upgrade-Insecure-Requests": "1",
    }


def make_session(config: ScrapeConfig) -> requests.Session:
    """A requests session with browser headers and urllib3 retries (backoff, jitter, ``Retry-After``)."""
    retry = Retry(
        total=config.retries,
        connect=config.retries,
        read=config.retries,
        status=config.retries,
        backoff_factor=0.5,
        backoff_jitter=0.3,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    # one connection per thread that can fetch at once: the query threads and the photo threads (both up to
    # ``concurrency``); fewer, and urllib3 warns "Connection pool is full" and opens throw-away connections
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=2 * max(2, config.concurrency))
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(browser_headers(config.user_agent))
    return session


class RobotsPolicy:
    """robots.txt rules per host, fetched once; ``obey=False`` allows everything (and says so in the log)."""

    def __init__(self, session: requests.Session, user_agent: str, obey: bool, timeout_s: float) -> None:
        self.session, self.user_agent, self.obey, self.timeout_s = session, user_agent, obey, timeout_s
        self._parsers: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._lock = threading.Lock()
        if not obey:
            log.warning("robots.txt is NOT obeyed (scrape.obey_robots=false)")

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this user agent fetch ``url``."""
        if not self.obey:
            return True
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            parser = self._parsers.get(root)
            if parser is None:
                parser = self._parsers[root] = self._load(root)
        return parser.can_fetch(self.user_agent, url)

    def _load(self, root: str) -> urllib.robotparser.RobotFileParser:
        parser = urllib.robotparser.RobotFileParser(root + "/robots.txt")
        try:
            resp = self.session.get(root + "/robots.txt", timeout=self.timeout_s)
        except requests.RequestException as exc:
            log.warning("robots.txt unreachable at %s (%s): treating as allow-all", root, exc)
            parser.parse([])
            return parser
        if resp.status_code in (401, 403):
            parser.disallow_all = True
        elif resp.ok:
            parser.parse(resp.text.splitlines())
        else:
            parser.parse([])
        return parser


class Fetcher:
    """Polite GETs: robots check, per-host delay, retries, timeout."""

    def __init__(
        self, config: ScrapeConfig, session: requests.Session | None = None, hosts: HostState | None = None
    ) -> None:
        """``hosts``: where the per-host politeness state lives (default: this process)."""
        self.config = config
        self.retries = 0  # retried attempts, summed over all requests
        self._count_lock = threading.Lock()
        self.session = session or make_session(config)
        self.throttle = HostThrottle(config, hosts)
        self.robots = RobotsPolicy(
            session=self.session, user_agent=config.user_agent, obey=config.obey_robots, timeout_s=config.timeout_s
        )

    def _request(self, url: str, headers: dict[str, str]) -> requests.Response:
        """One polite GET (robots, per-host delay, retries); the response whatever its status."""
        if not self.robots.allowed(url):
            raise FetchError(f"robots.txt disallows {url}")
        with self.throttle.request(url) as observe:
            started = time.monotonic()
            try:
                resp = self.session.get(url, timeout=self.config.timeout_s, headers=headers or None)
            except requests.RequestException as exc:
                observe(time.monotonic() - started, False)
                raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
            observe(resp.elapsed.total_seconds(), resp.status_code < 400)
        retry_state = getattr(resp.raw, "retries", None)
        if retry_state is not None and retry_state.history:
            with self._count_lock:
                self.retries += len(retry_state.history)
        return resp

    def get(self, url: str, **headers: str) -> requests.Response:
        """GET ``url``; raises :class:`FetchError` if forbidden by robots.txt or still failing after retries."""
        resp = self._request(url, headers)
        if resp.status_code >= 400:
            raise FetchError(f"{url}: HTTP {resp.status_code}", status=resp.status_code)
        return resp

    def get_page(self, url: str) -> str:
        """A search page's HTML; raises :class:`RobotCheck` when the response is the site's robot check."""
        resp = self._request(url, {})
        if is_robot_check(resp.status_code, resp.text):
            raise RobotCheck(f"{url}: robot check page (HTTP {resp.status_code})", status=resp.status_code)
        if resp.status_code >= 400:
            raise FetchError(f"{url}: HTTP {resp.status_code}", status=resp.status_code)
        return resp.text


class RobotCheck(FetchError):
    """The site answered with its robot check (captcha) instead of the page."""
