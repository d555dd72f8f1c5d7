"""Several models behind one server: ``?model=`` picks one, ``?version=`` pins one, unknown ones are 404 JSON."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.logged_model import LoggedModel
from core.model import build_classifier, build_frozen, build_head
from core.model_input import CENTER_CROP
from serving.predictor import ModelRef, Predictor

IMAGENET_LIKE = [f"class {i}" for i in range(12)]


@pytest.fixture(scope="module")
def http(make_predictor, app_for, tmp_path_factory):
    embedder = build_frozen("resnet50", 32, seed=1)[1]
    head = build_head(len(IMAGENET_LIKE), (16, 8), (0.0, 0.0), np.random.default_rng(1).normal(size=(8, 2048)))
    logged = LoggedModel(build_classifier(embedder, head), IMAGENET_LIKE, 32, run_id=None, resize=CENTER_CROP)
    imagenet = Predictor(logged, ModelRef("imagenet-classifier", "3", "mem"), runtime="tensorflow")
    return app_for(tmp_path_factory.mktemp("models"), make_predictor(), imagenet=imagenet).test_client()


def _photo() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (90, 160, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_the_default_model_is_stj(http) -> None:
    body = http.post("/predict", data=_photo(), content_type="image/jpeg").get_json()
    assert body["model"]["name"] == "stj-classifier" and len(body["top_k"]) == 3


def test_model_imagenet_answers_its_top_five_with_names(http) -> None:
    resp = http.post("/predict?model=imagenet", data=_photo(), content_type="image/jpeg")
    body = resp.get_json()
    assert resp.status_code == 200 and body["model"] == {"name": "imagenet-classifier", "version": "3"}
    assert len(body["top_k"]) == 5 and all(t["label"] in IMAGENET_LIKE for t in body["top_k"])
    assert resp.headers["X-Model-Name"] == "imagenet-classifier" and resp.headers["X-Model-Version"] == "3"
    batch = http.post("/predict/batch?model=imagenet&top_k=2", data={"images": [(io.BytesIO(_photo()), "a.jpg")]})
    assert batch.get_json()["predictions"][0]["model"]["name"] == "imagenet-classifier"
    assert http.post("/explain?model=imagenet", data=_photo(), content_type="image/jpeg").status_code == 200


def test_unknown_model_and_version_are_404_json(http) -> None:
    resp = http.post("/predict?model=resnet", data=_photo(), content_type="image/jpeg")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "unknown_model"
    assert "imagenet" in resp.get_json()["error"]["message"]
    for version in ("99", "latest"):
        resp = http.post(f"/predict?version={version}", data=_photo(), content_type="image/jpeg")
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "unknown_version", version


def test_the_current_version_can_be_named(http) -> None:
    body = http.post("/predict?model=imagenet&version=3", data=_photo(), content_type="image/jpeg").get_json()
    assert body["model"]["version"] == "3"


def test_metadata_lists_the_models_for_the_picker(http) -> None:
    meta = http.get("/metadata").get_json()
    assert meta["models"]["stj"]["name"] == "stj-classifier"
    assert meta["models"]["imagenet"] == {"name": "imagenet-classifier", "version": "3", "classes": 12}
    assert http.get("/metadata?model=imagenet").get_json()["classes"] == IMAGENET_LIKE


def test_a_pinned_version_is_loaded_once_whatever_its_spelling_and_loads_are_bounded(
    registry, app_for, make_predictor, tmp_path, monkeypatch
) -> None:
    second, third = registry.register(seed=4), registry.register(seed=5)
    loaded, load = [], Predictor.load
    monkeypatch.setattr(Predictor, "load", lambda *args, **kwargs: loaded.append(args[0]) or load(*args, **kwargs))
    app = app_for(tmp_path, make_predictor(), f"tracking.uri={registry.uri}", "serve.pinned_loads_per_minute=1")
    http = app.test_client()
    for spelling in (second, f"0{second}", f"000{second}"):
        resp = http.post(f"/predict?version={spelling}", data=_photo(), content_type="image/jpeg")
        assert resp.status_code == 200 and resp.get_json()["model"]["version"] == second, (spelling, resp.text)
    assert http.get(f"/metadata?version=00{second}").status_code == 200
    for odd in ("\u0661", "\uff11", "+1", " 1", "1.0", "1" * 10):  # Arabic-Indic and fullwidth digits, …
        resp = http.post("/predict", query_string={"version": odd}, data=_photo(), content_type="image/jpeg")
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "unknown_version", odd
    refused = http.post(f"/predict?version={third}", data=_photo(), content_type="image/jpeg")
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "too_many_model_loads"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert loaded == [f"models:/stj-classifier/{second}"]  # one load in all
