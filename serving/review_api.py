"""The admin's review over HTTP: the ``/review`` page and its JSON API (``serving.review`` does the work).

``GET /api/review`` lists flags, label issues and "none of these" entries with the latest decision per photo;
``POST /api/review/decisions`` records one (JSON ``{"sha256", "decision", "class"}``, 201);
``GET /api/review/photo/<sha256>`` is a listed photo's thumbnail. Every API route needs an admin: 401 anonymous,
403 for other accounts and on a server without accounts; the page needs an account (anonymous browsers are sent
to sign in) and says what its API refuses.

Config keys: ``serve.auth``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, send_from_directory
from flask_login import current_user

from serving.auth import admin, json_body, login_required
from serving.errors import ApiError
from serving.pages import STATIC
from serving.predictor import Predictor
from serving.review import Review
from serving.state import served

bp = Blueprint("review", __name__)


def _review() -> tuple[Review, int, Predictor]:
    """The review, the admin asking (401/403 otherwise) and the served classifier whose run is reviewed."""
    state = served()
    user = admin()
    assert state.review is not None  # accounts exist (admin() said so), and with them the review
    return state.review, user, state.holder.current()


@bp.get("/review")
def review_page():
    """The page (its API says who may see what): anonymous browsers are sent to sign in first."""
    if not current_user.is_authenticated:
        return login_required()
    return send_from_directory(STATIC, "review.html")


@bp.get("/api/review")
def review_list():
    """Flags, the served model's label issues, "none of these" entries and the decisions so far."""
    review, _, model = _review()
    listing = review.listing(model.ref.name, model.ref.version)
    named = {"classes": model.class_names, "model": {"name": model.ref.name, "version": model.ref.version}}
    return jsonify({**named, **listing})


@bp.post("/api/review/decisions")
def review_decide():
    """Record a decision about one listed photo; 201 with it, 422 naming a bad field."""
    review, user, model = _review()
    decided = review.decide(user, json_body(), model.class_names, model.ref.name, model.ref.version)
    return jsonify(decided), 201


@bp.get("/api/review/photo/<sha256>")
def review_photo(sha256: str):
    """A listed photo's thumbnail (JPEG); 404 when none is kept or readable here."""
    review, _, model = _review()
    data = review.photo(sha256, model.ref.name, model.ref.version)
    if data is None:
        raise ApiError(404, "not_found", "no photo with that SHA-256 is kept here")
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
