"""The web page in real headless Chromium (Selenium): upload, camera, chart, occlusion, Grad-CAM, history."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests

from catalog.draw import draw_product
from configs.schema import CLASS_NAMES_DEFAULT
from tests.browser.conftest import sign_up, start_site, wait

pytestmark = pytest.mark.browser


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
    wait(driver, lambda d: len(_bars(d, "chart")) == 3)


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


def test_a_photo_unlike_the_training_photos_is_named_none_of_these(
    browser, app_for, make_predictor, tmp_path, tmp_path_factory
) -> None:
    import numpy as np

    from core.ood import OodIndex

    nothing_is_like = OodIndex(np.full((1, 2048), 2048**-0.5, np.float16), k=1, threshold=-1.0)  # flags all
    url, server = start_site(app_for, tmp_path_factory.mktemp("ood"), make_predictor(ood=nothing_is_like))
    try:
        _upload(browser, url, tmp_path)
        label = browser.find_element("id", "label")
        names = list(CLASS_NAMES_DEFAULT)
        assert label.text == f"This doesn't look like {', '.join(names[:-1])} or {names[-1]}"
        assert label.get_attribute("data-in-distribution") == "false"
        assert browser.find_element("id", "confidence").text.startswith("(closest: ")
    finally:
        server.shutdown()


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
    wait(browser, lambda d: d.find_element("id", "after").is_displayed() and len(_bars(d, "chart-after")) == 3)
    after = _bars(browser, "chart-after")
    assert any(abs(before[k] - after[k]) > 1e-4 for k in before), (before, after)
    browser.find_element("id", "explain").click()
    wait(
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
    wait(browser, lambda d: d.execute_script("return document.getElementById('video').videoWidth") > 0)
    browser.find_element("id", "capture").click()
    wait(browser, lambda d: len(_bars(d, "chart")) == 3)


def make_token(driver, site: str, name: str = "test") -> str:
    """An API token made on the account page of the signed-in user."""
    driver.get(site + "/account")
    wait(driver, lambda d: "Signed in as" in d.find_element("id", "who").text)
    driver.find_element("id", "token-name").send_keys(name)
    driver.find_element("css selector", "#token-form button").click()
    return wait(driver, lambda d: d.find_element("id", "token-value").text)


def test_history_pages_filters_and_deletes(browser, site, shots, tmp_path) -> None:
    sign_up(browser, site, "hist@example.org")
    _upload(browser, site, tmp_path)  # signed in: the page keeps it
    assert "kept in your history" in browser.find_element("id", "history-note").text
    bearer = {"Authorization": f"Bearer {make_token(browser, site)}"}
    buf = io.BytesIO()
    draw_product("jeans", 3, 160).save(buf, "JPEG")
    for _ in range(11):
        requests.post(
            site + "/predict?history=1", files={"image": ("j.jpg", buf.getvalue())}, headers=bearer, timeout=30
        )
    total = requests.get(site + "/api/history", headers=bearer, timeout=10).json()["total"]
    assert total == 12
    browser.get(site + "/history")
    wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == 10)
    assert f"page 1 of {-(-total // 10)}" in browser.find_element("id", "page-info").text
    browser.save_screenshot(str(shots / "history.png"))
    browser.find_element("id", "next").click()
    wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == total - 10)
    browser.find_element("id", "prev").click()
    wait(browser, lambda d: "page 1" in d.find_element("id", "page-info").text)
    browser.execute_script("document.getElementById('from').value = '2999-01-01'")
    browser.find_element("id", "apply").click()
    wait(browser, lambda d: d.find_element("id", "empty").is_displayed())
    browser.execute_script("document.getElementById('from').value = ''")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "version")).select_by_visible_text("stj-classifier v1")  # model and version
    browser.find_element("id", "apply").click()
    wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == 10)
    assert browser.find_element("css selector", "#rows tbody tr .version").text == "stj-classifier v1"
    first = browser.find_element("css selector", "#rows tbody tr")
    deleted = first.get_attribute("data-id")
    first.find_element("css selector", ".delete").click()
    wait(browser, lambda d: d.switch_to.alert).accept()  # asks first
    wait(browser, lambda d: f"({total - 1} predictions)" in d.find_element("id", "page-info").text)
    assert deleted not in [r.get_attribute("data-id") for r in browser.find_elements("css selector", "#rows tbody tr")]
