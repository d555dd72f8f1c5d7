"""Where search pages come from: requests, or headless Chromium once a query meets the robot check.

``scrape.fetcher: auto`` fetches with requests and moves a query to the browser (after backing off
``scrape.robot_backoff_s``) when its page comes back as the robot check; ``selenium`` uses the browser for
every page; ``requests`` never does.

Config keys: ``scrape.fetcher``, ``scrape.robot_backoff_s``.
"""

from __future__ import annotations

import logging
import threading
import time

from configs.schema import ScrapeConfig
from scraper.browser import BrowserFetcher
from scraper.fetch import Fetcher, RobotCheck
from scraper.report import ScrapeReport

log = logging.getLogger(__name__)


class PageSource:
    """Search pages by requests or by the browser; a robot check moves that query to the browser."""

    def __init__(self, config: ScrapeConfig, fetcher: Fetcher, report: ScrapeReport) -> None:
        self.config, self.fetcher, self.report = config, fetcher, report
        self.browser = BrowserFetcher(config, fetcher.throttle, fetcher.robots)
        self._browser_queries: set[str] = set()
        self._browser_lock = threading.Lock()  # one Chromium, driven by one query thread at a time

    def _browser_page(self, url: str) -> str:
        with self._browser_lock:
            return self.browser.get_page(url)

    def get(self, url: str, query: str) -> str:
        """The HTML of one search page of ``query``."""
        if self.config.fetcher == "selenium" or query in self._browser_queries:
            return self._browser_page(url)
        try:
            return self.fetcher.get_page(url)
        except RobotCheck as exc:
            self.report.add(robot_checks=1)
            if self.config.fetcher == "requests":
                raise
            log.warning(
                "robot check for %r (%s): backing off %.0fs, then using the browser",
                query,
                exc,
                self.config.robot_backoff_s,
            )
            time.sleep(self.config.robot_backoff_s)
            with self._browser_lock:
                self._browser_queries.add(query)
            return self._browser_page(url)

    def close(self) -> None:
        """Release the browser and count its pages."""
        self.report.add(browser_pages=self.browser.pages)
        self.browser.close()
