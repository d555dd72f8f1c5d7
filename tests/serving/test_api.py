"""The HTTP API on a small real model (ResNet50 at 32 px, no registry): every route, every bad input, a fuzzer."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from configs.schema import CLASS_NAMES_DEFAULT
from serving.predictor import Predictor

CLASSES = list(CLASS_NAMES_DEFAULT)


@pytest.fixture(scope="module")
def predictor(make_predictor) -> Predictor:
    return make_predictor()


@pytest.fixture(scope="module")
def http(predictor, app_for, tmp_path_factory):
    limits = ["serve.max_upload_bytes=300000", "serve.max_files=4", "serve.min_side=16"]
    return app_for(tmp_path_factory.mktemp("history"), predictor, *limits).test_client()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(size=(120, 90), mode="RGB") -> Image.Image:
    arr = np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb's signature), with valid CRCs."""
    raw = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(raw)


def test_a_model_with_an_index_says_whether_each_photo_is_like_its_training_photos(
    predictor, make_predictor, app_for, tmp_path
) -> None:
    """The "none of these" verdict: the index's score from the same pass's features against its threshold, in
    /predict and /predict/batch; the probabilities are the whole model's; a model without an index (the
    module's) answers without the fields."""
    from core.ood import OodIndex, index_from
    from serving.uploads import decode_upload

    like, unlike = encode(photo(), "JPEG"), encode(Image.new("RGB", (120, 90), (250, 240, 20)), "JPEG")
    pixels = np.stack([decode_upload(data, 32, 1, resize=predictor.resize) for data in (like, unlike)])
    features = predictor.model.get_layer("embedder")(pixels, training=False).numpy()
    reference = index_from(features[:1], k=1)  # the first photo is the whole training set
    scores = reference.scores(features)
    assert scores[0] < 1e-3 < scores[1]
    model = make_predictor(ood=OodIndex(reference.reference, 1, threshold=float(scores.mean())))
    np.testing.assert_allclose(model.predict(pixels), predictor.predict(pixels), atol=1e-5)
    http = app_for(tmp_path, model, "serve.min_side=16").test_client()
    files = [(io.BytesIO(like), "like.jpg"), (io.BytesIO(unlike), "unlike.jpg")]
    answers = http.post("/predict/batch", data={"images": files}).get_json()["predictions"]
    assert [a["in_distribution"] for a in answers] == [True, False]
    assert answers[1]["ood_score"] == pytest.approx(float(scores[1]), abs=1e-3)
    single = http.post("/predict", data={"image": (io.BytesIO(unlike), "unlike.jpg")}).get_json()
    assert single["in_distribution"] is False and single["ood_score"] == pytest.approx(
        answers[1]["ood_score"], abs=1e-4
    )
    (tmp_path / "plain").mkdir()
    plain = app_for(tmp_path / "plain", predictor, "serve.min_side=16").test_client()
    body = plain.post("/predict", data={"image": (io.BytesIO(unlike), "unlike.jpg")}).get_json()
    assert "in_distribution" not in body and "ood_score" not in body


def test_predict_and_headers(http) -> None:
    resp = http.post("/predict?top_k=2", data={"image": (io.BytesIO(encode(photo(), "JPEG")), "p.jpg")})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["label"] in CLASSES and len(body["top_k"]) == 2
    assert body["model"] == {"name": "stj-classifier", "version": "1"}
    assert resp.headers["X-Model-Version"] == "1"
    assert http.get("/health").headers["X-Model-Version"] == "1"


def test_same_probabilities_as_the_model_offline(http, predictor) -> None:
    """The endpoint's numbers are the model's numbers on the same bytes (one preprocessing module)."""
    from core.model_input import decode_image

    data = encode(photo((200, 150)), "PNG")
    body = http.post("/predict", data=data, content_type="image/png").get_json()
    offline = predictor.predict(decode_image(data, 32)[None])[0]
    served = {t["label"]: t["probability"] for t in body["top_k"]}
    for i, name in enumerate(CLASSES):
        assert served[name] == pytest.approx(float(offline[i]), abs=1e-6)


@pytest.mark.parametrize(
    "img",
    [
        photo(mode="CMYK"),
        photo(mode="P"),
        photo(mode="RGBA"),
        photo(mode="L"),
        Image.fromarray(np.full((64, 64), 40000, np.uint16)),
    ],
    ids=["cmyk", "palette", "alpha", "grey", "16-bit"],
)
def test_unusual_modes_are_accepted(http, img) -> None:
    fmt = "JPEG" if img.mode in ("CMYK", "L") else "PNG"
    resp = http.post("/predict", data={"image": (io.BytesIO(encode(img, fmt)), "x")})
    assert resp.status_code == 200, resp.get_json()


def test_animated_gif_uses_first_frame_and_exif_rotation(http) -> None:
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert http.post("/predict", data={"image": (io.BytesIO(gif), "a.gif")}).status_code == 200
    exif = Image.Exif()
    exif[0x0112] = 8
    rotated = encode(photo((100, 40)), "JPEG", exif=exif.tobytes())  # stored 100x40, shown 40x100
    assert http.post("/predict", data={"image": (io.BytesIO(rotated), "r.jpg")}).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": {"image": (io.BytesIO(b'<svg xmlns="http://www.w3.org/2000/svg"/>'), "x.jpg")}},
            415,
            "unsupported_media_type",
        ),
        (
            {"data": {"image": (io.BytesIO(b"<html><script>alert(1)</script></html>"), "x.jpg")}},
            415,
            "unsupported_media_type",
        ),
        ({"data": {"image": (io.BytesIO(b"hello"), "x.txt")}}, 415, "unsupported_media_type"),
        ({"data": {"image": (io.BytesIO(encode(Image.new("RGB", (1, 1)), "PNG")), "x.png")}}, 422, "image_too_small"),
        ({"data": {"image": (io.BytesIO(_png_claiming(30000, 30000)), "bomb.png")}}, 413, "image_too_large"),
        ({"data": {"image": (io.BytesIO(_png_claiming(0, 0)), "zero.png")}}, 400, "corrupt_image"),
        ({"data": {"image": (io.BytesIO(encode(photo(), "JPEG")[:200]), "cut.jpg")}}, 400, "corrupt_image"),
        ({"data": b"x" * 400_000, "content_type": "image/jpeg"}, 413, "request_entity_too_large"),
        ({"data": {"image": (io.BytesIO(encode(photo(), "JPEG")), "a.jpg"), "top_k": "two"}}, 422, "invalid_top_k"),
    ],
    ids=["svg", "html", "text", "1x1", "bomb", "zero-size", "truncated", "too-big", "top_k"],
)
def test_bad_input_is_a_json_4xx(http, kwargs, status, code) -> None:
    resp = http.post("/predict", **kwargs)
    assert resp.status_code == status, resp.get_data()[:200]
    assert resp.get_json()["error"]["code"] == code


@pytest.mark.parametrize(("size", "status"), [(1000, 200), (400_000, 413)], ids=["under", "over"])
def test_chunked_body_is_held_to_the_limit(http, size: int, status: int) -> None:
    """A body sent without Content-Length is read up to the limit: refused beyond it, never cut and parsed."""
    body = encode(photo(), "JPEG") if size == 1000 else b"\xff" * size
    resp = http.post(
        "/predict",
        input_stream=io.BytesIO(body),
        content_type="image/jpeg",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert resp.status_code == status, resp.get_data()[:200]


def test_batch_endpoint(http) -> None:
    files = [(io.BytesIO(encode(photo((80 + i, 80)), "JPEG")), f"{i}.jpg") for i in range(3)]
    resp = http.post("/predict/batch", data={"images": files})
    assert resp.status_code == 200
    assert len(resp.get_json()["predictions"]) == 3
    too_many = [(io.BytesIO(encode(photo(), "JPEG")), f"{i}.jpg") for i in range(5)]
    resp = http.post("/predict/batch", data={"images": too_many})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_many_files"
    mixed = [(io.BytesIO(encode(photo(), "JPEG")), "ok.jpg"), (io.BytesIO(b"<svg/>"), "bad.jpg")]
    resp = http.post("/predict/batch", data={"images": mixed})
    assert resp.status_code == 415 and "file 1" in resp.get_json()["error"]["message"]


def test_metadata_metrics_openapi(http) -> None:
    meta = http.get("/metadata").get_json()
    assert meta["classes"] == CLASSES and meta["input"]["image_size"] == 32
    http.post("/predict", data={"image": (io.BytesIO(encode(photo(), "JPEG")), "p.jpg")})
    text = http.get("/metrics").get_data(as_text=True)
    assert 'stj_requests_total{endpoint="/predict",status="200"}' in text
    assert "stj_batch_size_bucket" in text and 'stj_model_version{name="stj-classifier",version="1"} 1.0' in text
    spec = http.get("/openapi.json").get_json()
    assert {"/predict", "/predict/batch", "/metadata", "/metrics", "/ready", "/health"} <= set(spec["paths"])


BODIES = st.one_of(
    st.binary(max_size=2048),
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"]).flatmap(
        lambda magic: st.binary(max_size=1024).map(lambda tail: magic + tail)
    ),
    st.integers(1, 2000).map(lambda cut: encode(photo((64, 48)), "PNG")[:cut]),
    st.integers(1, 2000).map(lambda cut: encode(photo((64, 48)), "JPEG")[:cut]),
)


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=BODIES,
    how=st.sampled_from(["multipart", "raw", "wrong-field", "text"]),
    top_k=st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 10).map(str)),
)
def test_fuzz_never_5xx(http, body: bytes, how: str, top_k) -> None:
    query = {} if top_k is None else {"top_k": top_k}
    if how == "multipart":
        resp = http.post("/predict", query_string=query, data={"image": (io.BytesIO(body), "f.jpg")})
    elif how == "wrong-field":
        resp = http.post("/predict", query_string=query, data={"file": (io.BytesIO(body), "f.jpg")})
    else:
        resp = http.post(
            "/predict", query_string=query, data=body, content_type="image/jpeg" if how == "raw" else "text/plain"
        )
    assert resp.status_code < 500, (resp.status_code, resp.get_data()[:300])
    if resp.status_code >= 400:
        assert set(resp.get_json()["error"]) == {"code", "message"}


def test_history_api(http) -> None:
    user, same = http.application.test_client(), {"Origin": "http://localhost"}
    user.post("/api/signup", json={"email": "ann@example.org", "password": "a long passphrase"}, headers=same)
    ids = []
    for i in range(3):
        resp = user.post(
            "/predict?history=1",
            data={"image": (io.BytesIO(encode(photo((90 + i, 90)), "JPEG")), "p.jpg")},
            headers=same,
        )
        ids.append(resp.get_json()["history_id"])
    listing = user.get("/api/history?per_page=2").get_json()
    assert listing["total"] == 3 and len(listing["rows"]) == 2 and listing["rows"][0]["id"] == ids[-1]
    assert listing["versions"] == ["1"] and listing["models"] == [{"name": "stj-classifier", "version": "1"}]
    assert listing["rows"][0]["model_name"] == "stj-classifier"  # STJ v1 and ImageNet v1 told apart
    assert user.get("/api/history?model_name=stj-classifier&model_version=1").get_json()["total"] == 3
    assert user.get("/api/history?model_name=imagenet-classifier").get_json()["total"] == 0
    assert user.get(f"/api/history/{ids[0]}/thumbnail").mimetype == "image/jpeg"
    assert user.get("/api/history?model_version=99").get_json()["total"] == 0
    for last in ("2999-12-31", "9999-12-31"):  # the last day there is, too
        assert user.get(f"/api/history?from=2000-01-01&to={last}").get_json()["total"] == listing["total"], last
    assert user.get("/api/history?to=2000-01-01").get_json()["total"] == 0
    for private in ("/api/history", f"/api/history/{ids[0]}/thumbnail", "/api/me"):  # never kept by a cache
        assert user.get(private).headers["Cache-Control"] == "no-store", private
    assert user.get("/api/history?from=yesterday").status_code == 422
    assert user.delete(f"/api/history/{ids[0]}", headers=same).status_code == 204
    assert user.delete(f"/api/history/{ids[0]}", headers=same).status_code == 404
    assert user.get("/api/history").get_json()["total"] == listing["total"] - 1


def test_explain_returns_a_heatmap(http) -> None:
    resp = http.post("/explain", data={"image": (io.BytesIO(encode(photo((120, 120)), "PNG")), "p.png")})
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.headers["X-Explained-Label"] in CLASSES
    assert Image.open(io.BytesIO(resp.data)).size == (32, 32)
    assert http.post("/explain", data={"image": (io.BytesIO(b"nope"), "p.png")}).status_code == 415


def test_pages_are_served(http) -> None:
    assert b"getUserMedia" in http.get("/static/app.js").data
    assert http.get("/").status_code == 200 and http.get("/history").status_code == 200
