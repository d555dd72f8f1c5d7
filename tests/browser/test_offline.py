"""The installable, offline page in real headless Chromium: the manifest, the service worker, the served model
run in the browser by onnxruntime-web (agreeing with the server), and a prediction with the network cut."""

from __future__ import annotations

import base64
import io

import pytest
import requests

from catalog.draw import draw_product
from configs.schema import CLASS_NAMES_DEFAULT
from tests.browser.conftest import start_site, wait

pytestmark = pytest.mark.browser
CLASSES = list(CLASS_NAMES_DEFAULT)


@pytest.fixture
def offline_site(tmp_path_factory, app_for, lite_predictor):
    folder = tmp_path_factory.mktemp("browser-models")
    url, server = start_site(
        app_for,
        tmp_path_factory.mktemp("history"),
        lite_predictor,
        "serve.browser_model=true",
        f"serve.browser_model_dir={folder}",
    )
    yield url, server
    server.shutdown()


def _photo(label: str, seed: int, side: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    draw_product(label, seed, 300).resize((side, side)).save(buf, fmt)
    return buf.getvalue()


def _in_browser(driver, data: bytes, mime: str) -> dict:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const img = new Image();"
        "img.onload = () => stjLocal.classify(img).then(done, (e) => done({error: String(e)}));"
        "img.src = arguments[0];",
        f"data:{mime};base64,{base64.b64encode(data).decode()}",
    )


def _ready_offline(driver, site: str) -> None:
    driver.get(site + "/")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.offlineReady === '1'"), timeout=240)


def test_manifest_and_browser_model_agree_with_the_server(browser, offline_site) -> None:
    site, _ = offline_site
    manifest = requests.get(site + "/manifest.webmanifest", timeout=10)
    assert manifest.headers["Content-Type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["start_url"] == "/" and body["display"] == "standalone"
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in body["icons"]}
    for icon in body["icons"]:
        assert requests.get(site + icon["src"], timeout=10).ok, icon
    _ready_offline(browser, site)
    assert browser.execute_script("return navigator.serviceWorker.controller !== null")
    exact, resized = [], []
    for index in range(12):
        label = CLASSES[index % 3]
        for side, fmt, mime, into in ((32, "PNG", "image/png", exact), (300, "JPEG", "image/jpeg", resized)):
            data = _photo(label, 100 + index, side, fmt)
            server = requests.post(site + "/predict?top_k=3", files={"image": ("p", data)}, timeout=30).json()
            local = _in_browser(browser, data, mime)
            assert "error" not in local, local
            probs = {row["label"]: row["probability"] for row in server["top_k"]}
            into.append(
                (
                    server["label"] == local["label"],
                    max(abs(probs[c] - p) for c, p in zip(CLASSES, local["probabilities"], strict=True)),
                )
            )
    # the model's own pixels: the same network, so the same answer
    assert all(same for same, _ in exact) and max(diff for _, diff in exact) < 1e-3, exact
    # photos the browser resizes itself (canvas) and the server resizes (Pillow)
    assert sum(same for same, _ in resized) / len(resized) >= 0.95, resized


def test_the_page_predicts_in_the_browser_with_the_network_cut(browser, offline_site, tmp_path, shots) -> None:
    site, server = offline_site
    _ready_offline(browser, site)
    path = tmp_path / "jeans.jpg"
    path.write_bytes(_photo("jeans", 7, 300, "JPEG"))
    try:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        server.shutdown()  # and the server really gone: nothing can answer but the cache and the browser
        server.server_close()
        browser.get(site + "/")  # the app shell, from the service worker's cache
        wait(browser, lambda d: d.find_element("id", "file"))
        browser.find_element("id", "file").send_keys(str(path))
        where = wait(browser, lambda d: d.find_element("id", "answered-by").get_attribute("data-where"), timeout=120)
        assert where == "browser"
        assert browser.find_element("id", "label").text in CLASSES
        assert len(browser.find_elements("css selector", "#chart .bar")) == 3
        browser.save_screenshot(str(shots / "offline.png"))
        browser.get(site + "/history")  # a page never visited: the offline page
        assert "You are offline" in wait(browser, lambda d: d.find_element("tag name", "h1").text)
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
