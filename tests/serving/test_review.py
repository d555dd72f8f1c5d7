"""The admin's review: only an admin reads ``/review`` and its API; flags (with their photos) and "none of these"
log entries are listed side by side with the decision per photo; bad decisions are JSON 422 naming the field;
the export turns the latest decisions into the label-override file and an added upload into a manifest row
that the next split sees under its class."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.images import clean_image
from core.label_overrides import read_overrides, reviewed_manifest
from core.manifest import ManifestRow, manifest_path, read_manifest, write_manifest
from core.ood import OodIndex
from serving.review import export_decisions
from tests.support import SAME_ORIGIN, noise_jpeg


@pytest.fixture(scope="module")
def predictor(make_predictor):
    """A model whose "none of these" index flags every photo (so each answer is a log entry to review)."""
    return make_predictor(ood=OodIndex(np.full((1, 2048), 2048**-0.5, np.float16), k=1, threshold=-1.0))


@pytest.fixture
def reviewed(predictor, signed_in_app, tmp_path):
    """An app with accounts; ann (an admin) and bob (not) signed in; two answers flagged by bob with photos."""
    app, ann, _ = signed_in_app(predictor, f"project.data_dir={tmp_path / 'data'}", email="ann@example.com")
    app.extensions["stj"].accounts.grant("ann@example.com")
    bob = app.test_client()
    assert bob.post("/api/signup", json={"email": "bob@example.com", "password": "another good phrase"},
                    headers=SAME_ORIGIN).status_code == 201  # fmt: skip
    photos = [noise_jpeg(seed) for seed in (1, 2)]
    flags = []
    for photo in photos:
        answer = bob.post("/predict", data={"image": (io.BytesIO(photo), "p.jpg")}, headers=SAME_ORIGIN).get_json()
        assert answer["in_distribution"] is False
        app.extensions["stj"].log.flush()
        form = {"prediction_id": answer["prediction_id"], "class": "jeans", "image": (io.BytesIO(photo), "p.jpg")}
        flags.append(bob.post("/api/feedback", data=form, headers=SAME_ORIGIN).get_json())
    return app, ann, bob, photos, flags


def test_only_an_admin_reviews(reviewed) -> None:
    app, ann, bob, _, flags = reviewed
    anonymous = app.test_client()
    assert anonymous.get("/api/review").status_code == 401
    page = anonymous.get("/review", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/review")
    refused = bob.get("/api/review")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "admin_only"
    decision = {"sha256": flags[0]["sha256"], "decision": "keep"}
    assert bob.post("/api/review/decisions", json=decision, headers=SAME_ORIGIN).status_code == 403
    assert bob.get(f"/api/review/photo/{flags[0]['sha256']}").status_code == 403
    assert bob.get("/api/me").get_json()["user"]["admin"] is False
    assert ann.get("/api/me").get_json()["user"]["admin"] is True
    assert ann.get("/review", headers={"Accept": "text/html"}).status_code == 200


def test_flags_and_none_of_these_entries_are_listed_with_their_photos(reviewed) -> None:
    _, ann, _, photos, flags = reviewed
    listing = ann.get("/api/review").get_json()
    assert listing["classes"] == ["saree", "trousers", "jeans"] and listing["model"]["version"] == "1"
    assert [f["sha256"] for f in listing["flags"]] == [clean_image(p, 16).sha256 for p in reversed(photos)]
    assert all(f["has_photo"] and f["corrected"] == "jeans" for f in listing["flags"])
    ood = listing["none_of_these"]
    assert {o["prediction_id"] for o in ood} == {f["prediction_id"] for f in flags}
    assert all(o["has_photo"] and o["sha256"] for o in ood)  # flagged with the photo: it is shown
    assert listing["label_issues"] == [] and listing["decisions"] == {}  # a model without a run: none
    thumb = ann.get(f"/api/review/photo/{flags[0]['sha256']}")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.data)).size) <= 160
    assert ann.get(f"/api/review/photo/{'0' * 64}").status_code == 404
    assert ann.get("/api/review/photo/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_bad_decisions_are_json_422_naming_the_field(reviewed) -> None:
    _, ann, _, _, flags = reviewed
    sha = flags[0]["sha256"]
    cases = {
        "bad_sha256": [{"decision": "keep"}, {"sha256": "abc", "decision": "keep"}, {"sha256": "f" * 64, "decision": "keep"}],
        "bad_decision": [{"sha256": sha, "decision": "delete"}],
        "bad_class": [{"sha256": sha, "decision": "relabel"}, {"sha256": sha, "decision": "add", "class": "sock"}],
    }  # fmt: skip
    for code, bodies in cases.items():
        for body in bodies:
            answer = ann.post("/api/review/decisions", json=body, headers=SAME_ORIGIN)
            assert answer.status_code == 422 and answer.get_json()["error"]["code"] == code, (body, answer.get_json())
    assert ann.post("/api/review/decisions", data="x", headers=SAME_ORIGIN).status_code == 415
    assert ann.get("/api/review").get_json()["decisions"] == {}


def test_the_latest_decisions_become_overrides_the_next_split_applies(reviewed, tmp_path) -> None:
    app, ann, _, photos, flags = reviewed
    data_dir = tmp_path / "data"
    scraped, uploaded = (clean_image(p, 16).sha256 for p in photos)
    (data_dir / "raw").mkdir(parents=True)
    (data_dir / "raw" / "a.jpg").write_bytes(
        clean_image(photos[0], 16).jpeg
    )  # the first flag sent a photo the scrape has, listed as saree
    row = ManifestRow("saree", "saree", "A1", "t", 1, "u", "a", scraped, 64, 64, "raw/a.jpg", "2026-01-01T00:00:00")
    write_manifest([row], manifest_path(data_dir))

    def decide(sha: str, decision: str, label: str | None = None) -> None:
        body = {"sha256": sha, "decision": decision, **({"class": label} if label else {})}
        assert ann.post("/api/review/decisions", json=body, headers=SAME_ORIGIN).status_code == 201

    decide(scraped, "exclude")
    decide(scraped, "relabel", "trousers")  # the latest decision counts
    decide(uploaded, "add", "jeans")
    decisions = ann.get("/api/review").get_json()["decisions"]
    assert decisions[scraped]["decision"] == "relabel" and decisions[uploaded]["label"] == "jeans"

    database = app.extensions["stj"].history.database
    exported = export_decisions(database, data_dir)
    assert (exported.decisions, exported.added) == (2, 1)
    overrides = read_overrides(data_dir)
    assert dict(zip(overrides["sha256"], overrides["decision"], strict=True)) == {scraped: "relabel", uploaded: "add"}
    manifest = read_manifest(manifest_path(data_dir))
    added = manifest[manifest["source"] == "upload"].iloc[0]
    assert (data_dir / added["path"]).read_bytes() == clean_image(photos[1], 16).jpeg and added["sha256"] == uploaded
    reviewed_rows = reviewed_manifest(data_dir).set_index("sha256")["class"].to_dict()
    assert reviewed_rows == {scraped: "trousers", uploaded: "jeans"}

    assert export_decisions(database, data_dir).added == 0  # once: a second export adds nothing again
    assert len(read_manifest(manifest_path(data_dir))) == 2
    decide(uploaded, "keep")  # no longer added: the upload's row stays in the manifest but is not used
    export_decisions(database, data_dir)
    assert set(reviewed_manifest(data_dir)["sha256"]) == {scraped}


def test_an_added_upload_is_withdrawn_when_its_author_deletes_the_account(reviewed, tmp_path) -> None:
    app, ann, bob, photos, _ = reviewed
    data_dir = tmp_path / "data"
    uploaded = clean_image(photos[1], 16).sha256
    body = {"sha256": uploaded, "decision": "add", "class": "jeans"}
    assert ann.post("/api/review/decisions", json=body, headers=SAME_ORIGIN).status_code == 201
    database = app.extensions["stj"].history.database
    assert export_decisions(database, data_dir).added == 1
    saved = data_dir / "uploads" / f"{uploaded}.jpg"
    assert saved.exists() and uploaded in set(reviewed_manifest(data_dir)["sha256"])

    gone = bob.delete("/api/account", json={"password": "another good phrase"}, headers=SAME_ORIGIN)
    assert gone.status_code == 204, gone.get_json()
    assert export_decisions(database, data_dir).decisions == 0  # the consent went with the account
    assert not saved.exists() and uploaded not in set(reviewed_manifest(data_dir)["sha256"])
