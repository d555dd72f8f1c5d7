"""Corrections: every answer carries a prediction id; a signed-in user (session or API token) names it and the
right class, as JSON or with the photo (kept, with its SHA-256); the stored correction knows the model and the
answer from the prediction log. Bad bodies are JSON 4xx naming the field; without accounts there is nobody to
take a correction from."""

from __future__ import annotations

import io

import pytest

from core.images import clean_image
from tests.support import SAME_ORIGIN, noise_jpeg


@pytest.fixture(scope="module")
def predictor(make_predictor):
    return make_predictor()


@pytest.fixture
def signed_in(predictor, signed_in_app):
    """An app with accounts, a client signed in on it, and a bearer token of the same account."""
    return signed_in_app(predictor)


def test_an_api_client_corrects_an_answer_by_its_id(signed_in) -> None:
    app, _, bearer = signed_in
    api = app.test_client()
    answer = api.post("/predict", data={"image": (io.BytesIO(noise_jpeg()), "p.jpg")}, headers=bearer).get_json()
    assert answer["prediction_id"].endswith(":0")
    batch = api.post(
        "/predict/batch", data={"images": [(io.BytesIO(noise_jpeg(s)), f"{s}.jpg") for s in (1, 2)]}, headers=bearer
    )
    assert [p["prediction_id"].rsplit(":", 1)[1] for p in batch.get_json()["predictions"]] == ["0", "1"]
    app.extensions["stj"].log.flush()  # what the log knows joins the correction
    right = next(c for c in app.extensions["stj"].holder.current().class_names if c != answer["label"])
    stored = api.post("/api/feedback", json={"prediction_id": answer["prediction_id"], "class": right}, headers=bearer)
    assert stored.status_code == 201
    body = stored.get_json()
    assert (body["corrected"], body["label"], body["model_version"], body["sha256"]) == (
        right,
        answer["label"],
        "1",
        None,
    )
    [kept] = app.extensions["stj"].feedback.latest()
    assert kept["id"] == body["id"] and kept["has_photo"] is False


def test_the_page_sends_the_photo_with_the_correction_and_it_is_kept(signed_in) -> None:
    app, client, _ = signed_in
    answer = client.post(
        "/predict", data={"image": (io.BytesIO(noise_jpeg()), "p.jpg")}, headers=SAME_ORIGIN
    ).get_json()
    photo = noise_jpeg(7)
    form = {"prediction_id": answer["prediction_id"], "class": "jeans", "image": (io.BytesIO(photo), "photo.jpg")}
    stored = client.post("/api/feedback", data=form, headers=SAME_ORIGIN)
    assert stored.status_code == 201 and stored.get_json()["sha256"] == clean_image(photo, 16).sha256
    assert app.extensions["stj"].feedback.latest()[0]["has_photo"] is True


def test_bad_corrections_are_json_4xx_naming_what_is_wrong(signed_in, predictor, app_for, tmp_path) -> None:
    app, _, bearer = signed_in
    api = app.test_client()
    missing = api.post("/api/feedback", json={"class": "jeans"}, headers=bearer)
    assert missing.status_code == 422 and missing.get_json()["error"]["code"] == "bad_prediction_id"
    wrong = api.post("/api/feedback", json={"prediction_id": "abc:0", "class": "sock"}, headers=bearer)
    assert wrong.status_code == 422 and "one of: saree, trousers, jeans" in wrong.get_json()["error"]["message"]
    assert api.post("/api/feedback", data="x", headers=bearer).status_code == 415
    not_a_photo = {"prediction_id": "abc:0", "class": "jeans", "image": (io.BytesIO(b"no"), "p.jpg")}
    assert api.post("/api/feedback", data=not_a_photo, headers=bearer).status_code // 100 == 4
    anonymous = app.test_client().post("/api/feedback", json={"prediction_id": "abc:0", "class": "jeans"})
    assert anonymous.status_code == 401
    nobody = app_for(tmp_path / "open", predictor, "serve.auth=none").test_client()
    off = nobody.post("/api/feedback", json={"prediction_id": "abc:0", "class": "jeans"}, headers=SAME_ORIGIN)
    assert off.status_code == 403 and off.get_json()["error"]["code"] == "accounts_off"
    assert app.extensions["stj"].feedback.latest() == []
