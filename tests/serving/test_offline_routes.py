"""The installable app's routes through Flask's test client: manifest, service worker, offline page, and the
browser model (exported once per version to ONNX, served immutable, equal to the server's answers)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from tests.support import wait_until


@pytest.fixture
def make_client(lite_predictor, app_for, tmp_path):
    def make(*overrides: str):
        return app_for(
            tmp_path, lite_predictor, f"serve.browser_model_dir={tmp_path / 'browser'}", *overrides
        ).test_client()

    return make


def test_the_browser_model_is_exported_once_and_matches_the_server(make_client, lite_predictor, tmp_path) -> None:
    client = make_client()
    first = client.get("/browser-model/meta.json")  # starts the export in the background: no request waits for it
    assert (first.status_code, first.get_json()["error"]["code"]) == (503, "browser_model_preparing")
    assert int(first.headers["Retry-After"]) > 0
    wait_until(lambda: client.get("/browser-model/meta.json").status_code == 200, "the export", seconds=120)
    meta = client.get("/browser-model/meta.json").get_json()
    assert meta["url"] == "/browser-model/stj-classifier/1/model.onnx"
    assert meta["class_names"] == lite_predictor.class_names and meta["image_size"] == 32
    onnx_file = tmp_path / "browser" / "stj-classifier-1" / "onnx" / "model.onnx"
    written = onnx_file.stat().st_mtime_ns
    assert client.get("/browser-model/meta.json").get_json() == meta
    assert onnx_file.stat().st_mtime_ns == written  # kept, not exported again
    model = client.get(meta["url"])
    assert "immutable" in model.headers["Cache-Control"] and len(model.data) == meta["bytes"]
    session = onnxruntime.InferenceSession(model.data, providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(3).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    ours = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    np.testing.assert_allclose(ours, lite_predictor.predict(pixels), atol=1e-5)
    missing = client.get("/browser-model/stj-classifier/9/model.onnx")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "not_found")


def test_the_app_is_installable_and_its_shell_public(make_client) -> None:
    client = make_client("serve.auth=required")
    manifest = client.get("/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json" and manifest.get_json()["start_url"] == "/"
    worker = client.get("/sw.js")
    assert worker.mimetype == "text/javascript" and worker.headers["Cache-Control"] == "no-cache"
    assert b"caches.open" in worker.data
    assert b"You are offline" in client.get("/offline").data
    assert client.get("/browser-model/meta.json").status_code == 401  # the model itself needs an account
    off = make_client("serve.browser_model=false").get("/browser-model/meta.json")
    assert (off.status_code, off.get_json()["error"]["code"]) == (404, "browser_model_disabled")
