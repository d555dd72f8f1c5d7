"""The browser path: headless Chromium driven by Selenium, for pages that need a real browser.

Used for a query when the site answers requests with its robot check (``scrape.fetcher: auto``), or for
every page (``scrape.fetcher: selenium``). Scrolls the page so lazily loaded photos resolve, then hands
the rendered HTML to the same parser as the requests path. Selenium Manager cannot download drivers
offline, so the Debian chromium and chromedriver paths are explicit.

Config keys: ``scrape.chromium_path``, ``scrape.chromedriver_path``, ``scrape.timeout_s``,
``scrape.user_agent``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from configs.errors import UserError
from configs.schema import ScrapeConfig
from scraper.fetch import FetchError, RobotCheck, RobotsPolicy
from scraper.politeness import HostThrottle
from scraper.robot_check import is_robot_check

log = logging.getLogger(__name__)

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1366,900",
)


class BrowserUnavailable(UserError):
    """Chromium or chromedriver is missing or cannot start."""


def start_chromium(config: ScrapeConfig):
    """A headless Chromium WebDriver configured for offline, sandboxed use."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    for path in (config.chromium_path, config.chromedriver_path):
        if not Path(path).exists():
            raise BrowserUnavailable(
                f"{path} not found: install Debian's chromium and chromium-driver (make system-deps) "
                "or set scrape.chromium_path / scrape.chromedriver_path"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = config.chromium_path
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-agent={config.user_agent}")
    try:
        driver = webdriver.Chrome(service=Service(config.chromedriver_path), options=options)
    except WebDriverException as exc:
        raise BrowserUnavailable(f"chromium failed to start: {exc.msg}") from None
    driver.set_page_load_timeout(config.timeout_s)
    return driver


class BrowserFetcher:
    """Loads search pages in Chromium (started on first use), with the same politeness as requests."""

    def __init__(self, config: ScrapeConfig, throttle: HostThrottle, robots: RobotsPolicy) -> None:
        self.config, self.throttle, self.robots = config, throttle, robots
        self._driver = None
        self.pages = 0

    def get_page(self, url: str, scroll_pause_s: float = 0.15) -> str:
        """The rendered HTML of ``url`` after scrolling to the bottom (lazy photos resolved)."""
        from selenium.common.exceptions import WebDriverException

        if not self.robots.allowed(url):
            raise FetchError(f"robots.txt disallows {url}")
        if self._driver is None:
            self._driver = start_chromium(self.config)
        with self.throttle.request(url) as observe:
            started = time.monotonic()
            try:
                self._driver.get(url)
                observe(time.monotonic() - started, True)  # the page's load, not the scrolling after it
                height = self._driver.execute_script("return document.body.scrollHeight") or 0
                step = self._driver.execute_script("return window.innerHeight") or 800
                for y in range(0, int(height) + step, step):
                    self._driver.execute_script("window.scrollTo(0, arguments[0]);", y)
                    time.sleep(scroll_pause_s)
                html = self._driver.page_source
            except WebDriverException as exc:
                raise FetchError(f"{url}: browser: {exc.msg}") from None
        self.pages += 1
        if is_robot_check(200, html):
            raise RobotCheck(f"{url}: robot check page in the browser too")
        return html

    def close(self) -> None:
        """Quit Chromium if it was started."""
        if self._driver is not None:
            self._driver.quit()
            self._driver = None
