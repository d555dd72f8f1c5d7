"""The page's in-browser model (ONNX on onnxruntime-web, headless Chromium) against the server, on the
champion's test photos: how often the two agree on the top-1 class, and time per photo for each.

Run from a folder where the pipeline has run (`make run` or `make demo`): python benchmarks/browser.py
[--config configs/demo.yaml] [--limit N]. Both sides get the same file; each resizes it its own way (the
canvas in the browser, Pillow on the server). Prints figures and the browser/server time ratio of this run.
"""

from __future__ import annotations

import argparse
import base64
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.settings import load_run_config  # noqa: E402
from scraper.browser import CHROMIUM_ARGS  # noqa: E402
from serving.app import create_app  # noqa: E402
from training.splitting.split import read_split, split_path  # noqa: E402

CLASSIFY = (
    "const done = arguments[arguments.length - 1]; const img = new Image();"
    "img.onload = () => { const t = performance.now();"
    "  stjLocal.classify(img).then((r) => done([r.label, performance.now() - t]), (e) => done([String(e), -1])); };"
    "img.src = arguments[0];"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--limit", type=int, default=0, help="at most this many test photos (0: all)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="stj-bench-browser-") as folder:
        config = load_run_config(
            args.config,
            [
                f"serve.database_url=sqlite:///{folder}/history.db",
                f"serve.browser_model_dir={folder}/models",
                "serve.auth=none",
            ],
        )
        data_dir = Path(config.project.data_dir)
        split = read_split(split_path(data_dir))
        photos = [data_dir / p for p in split[split["split"] == "test"]["path"]]
        photos = photos[: args.limit] if args.limit else photos
        server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        site = f"http://127.0.0.1:{server.server_port}"
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_script_timeout(120)
        try:
            started = time.perf_counter()
            driver.get(site + "/")
            WebDriverWait(driver, 600).until(lambda d: d.execute_script("return document.body.dataset.offlineReady"))
            ready_s = time.perf_counter() - started
            meta = requests.get(site + "/browser-model/meta.json", timeout=30).json()
            agree, server_ms, browser_ms = 0, [], []
            for path in photos:
                data = path.read_bytes()
                t = time.perf_counter()
                answer = requests.post(site + "/predict", files={"image": (path.name, data)}, timeout=60).json()
                server_ms.append((time.perf_counter() - t) * 1000)
                label, ms = driver.execute_async_script(
                    CLASSIFY, "data:image/jpeg;base64," + base64.b64encode(data).decode()
                )
                if ms < 0:
                    raise SystemExit(f"the browser model failed: {label}")
                browser_ms.append(ms)
                agree += label == answer["label"]
        finally:
            driver.quit()
            server.shutdown()
    n = len(photos)
    browser_med, server_med = statistics.median(browser_ms), statistics.median(server_ms)
    print(f"model: {meta['name']} v{meta['version']}, ONNX {meta['bytes'] / 1e6:.1f} MB, input {meta['image_size']} px")
    print(f"page ready for offline use (export + download + session) in {ready_s:.1f} s")
    print(f"top-1 agreement, browser vs server: {agree}/{n} = {agree / n:.1%}")
    print(
        f"per photo, median: browser {browser_med:.1f} ms (wasm, 1 thread), server {server_med:.1f} ms (HTTP round trip)"
    )
    print(f"ratio browser/server: {browser_med / server_med:.2f}x")


if __name__ == "__main__":
    main()
