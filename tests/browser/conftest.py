"""Browser fixtures: the app on a real local HTTP server, headless Chromium (Selenium), a screenshot folder."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from scraper.browser import CHROMIUM_ARGS

PASSWORD = "a long passphrase"
PHONE, DESKTOP = (390, 844), (1300, 1800)


def start_site(app_for, folder: Path, predictor, *overrides: str):
    """The app on a threaded werkzeug server on a free port; returns (url, server). No browser model unless
    ``overrides`` ask for one (its export takes CPU the other tests need)."""
    app = app_for(folder, predictor, "serve.browser_model=false", *overrides)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture(scope="module")
def site(tmp_path_factory, app_for, make_predictor):
    url, server = start_site(app_for, tmp_path_factory.mktemp("history"), make_predictor())
    yield url
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(*DESKTOP)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("STJ_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver, condition, timeout: float = 30):
    """Wait until ``condition(driver)`` is truthy; returns it. Elements of a page being replaced (stale) and
    not yet there count as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(d)
    )


def sign_up(driver, site: str, email: str, password: str = PASSWORD) -> None:
    """Create an account through the sign-in page (signs out whoever was signed in first)."""
    driver.delete_all_cookies()
    driver.get(site + "/login")
    driver.find_element("id", "signup-email").send_keys(email)
    driver.find_element("id", "signup-password").send_keys(password)
    driver.find_element("css selector", "#signup-form button[type=submit]").click()
    wait(driver, lambda d: d.current_url.rstrip("/") == site)
    wait(driver, lambda d: email in d.find_element("id", "account-nav").text)
