"""The web page in real headless Chromium (Selenium): upload, camera, chart, occlusion, Grad-CAM, history."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from catalog.draw import draw_product
from configs.schema import CLASS_NAMES_DEFAULT
from flows.settings import load_run_config
from scraper.browser import CHROMIUM_ARGS
from serving.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory, make_predictor):
    db = tmp_path_factory.mktemp("history") / "history.db"
    config = load_run_config("configs/demo.yaml", [f"serve.history_path={db}", "serve.max_wait_ms=1"])
    server = make_server("127.0.0.1", 0, create_app(config, make_predictor()), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(1300, 1800)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("STJ_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def _bars(driver, chart_id: str) -> dict[str, float]:
    bars = driver.find_elements("css selector", f"#{chart_id} .bar")
    return {b.get_attribute("data-label"): float(b.get_attribute("data-probability")) for b in bars}


def _upload(driver, site: str, tmp_path: Path) -> None:
    big = draw_product("saree", 5, 400).resize((2400, 1800))  # larger than 1500 px: the browser shrinks it
    path = tmp_path / "saree.jpg"
    big.save(path, "JPEG")
    driver.get(site + "/")
    field = driver.find_element("id", "file")
    driver.execute_script("arguments[0].hidden = false;", field)
    field.send_keys(str(path))
    _wait(driver, lambda d: len(_bars(d, "chart")) == 3)


def test_upload_shows_label_chart_and_version(browser, site, shots, tmp_path) -> None:
    _upload(browser, site, tmp_path)
    label = browser.find_element("id", "label").text
    assert label in CLASS_NAMES_DEFAULT
    assert browser.execute_script("return document.getElementById('photo').width") == 1500
    assert "v1" in browser.find_element("id", "used-version").text
    assert "v1" in browser.find_element("id", "model").text
    probs = _bars(browser, "chart")
    assert abs(sum(probs.values()) - 1) < 1e-3
    browser.save_screenshot(str(shots / "predict.png"))


def test_occlusion_changes_the_probabilities(browser, site, shots, tmp_path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    _upload(browser, site, tmp_path)
    before = _bars(browser, "chart")
    canvas = browser.find_element("id", "photo")
    width, height = canvas.size["width"], canvas.size["height"]
    actions = ActionChains(browser)
    for row in range(-height // 2 + 10, height // 2 - 10, 25):  # black out most of the photo
        actions.move_to_element_with_offset(canvas, -width // 2 + 10, row).click_and_hold()
        actions.move_by_offset(width - 20, 0).release()
    actions.perform()
    browser.find_element("id", "predict-occluded").click()
    _wait(browser, lambda d: d.find_element("id", "after").is_displayed() and len(_bars(d, "chart-after")) == 3)
    after = _bars(browser, "chart-after")
    assert any(abs(before[k] - after[k]) > 1e-4 for k in before), (before, after)
    browser.find_element("id", "explain").click()
    _wait(
        browser,
        lambda d: (
            d.find_element("id", "cam").is_displayed()
            and d.execute_script("return document.getElementById('heatmap').naturalWidth") > 0
        ),
    )
    browser.save_screenshot(str(shots / "occlusion.png"))


def test_camera_capture_predicts(browser, site) -> None:
    browser.get(site + "/")
    browser.find_element("id", "camera-start").click()
    _wait(browser, lambda d: d.execute_script("return document.getElementById('video').videoWidth") > 0)
    browser.find_element("id", "capture").click()
    _wait(browser, lambda d: len(_bars(d, "chart")) == 3)


def test_history_pages_filters_and_deletes(browser, site, shots) -> None:
    buf = io.BytesIO()
    draw_product("jeans", 3, 160).save(buf, "JPEG")
    for _ in range(12):
        requests.post(site + "/predict?history=1", files={"image": ("j.jpg", buf.getvalue())}, timeout=30)
    total = requests.get(site + "/api/history", timeout=10).json()["total"]
    browser.get(site + "/history")
    _wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == 10)
    assert f"page 1 of {-(-total // 10)}" in browser.find_element("id", "page-info").text
    browser.save_screenshot(str(shots / "history.png"))
    browser.find_element("id", "next").click()
    _wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == total - 10)
    browser.find_element("id", "prev").click()
    _wait(browser, lambda d: "page 1" in d.find_element("id", "page-info").text)
    browser.execute_script("document.getElementById('from').value = '2999-01-01'")
    browser.find_element("id", "apply").click()
    _wait(browser, lambda d: d.find_element("id", "empty").is_displayed())
    browser.execute_script("document.getElementById('from').value = ''")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "version")).select_by_value("1")
    browser.find_element("id", "apply").click()
    _wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == 10)
    first = browser.find_element("css selector", "#rows tbody tr")
    deleted = first.get_attribute("data-id")
    first.find_element("css selector", ".delete").click()
    _wait(browser, lambda d: f"({total - 1} predictions)" in d.find_element("id", "page-info").text)
    assert deleted not in [r.get_attribute("data-id") for r in browser.find_elements("css selector", "#rows tbody tr")]
