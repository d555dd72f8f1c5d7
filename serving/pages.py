"""The web page (``/``), the history page (``/history``) and the history's JSON API (``/api/history``).

Config keys: ``serve.history_path``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_from_directory

from serving.errors import ApiError
from serving.state import served
from serving.uploads import date_arg, int_arg

STATIC = Path(__file__).parent / "static"

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return send_from_directory(STATIC, "index.html")


@bp.get("/history")
def history_page():
    return send_from_directory(STATIC, "history.html")


@bp.get("/api/history")
def history_list():
    history = served().history
    page, per_page = (
        int_arg(name="page", default=1, low=1, high=100000),
        int_arg(name="per_page", default=20, low=1, high=100),
    )
    found = history.page(
        page=page,
        per_page=per_page,
        date_from=date_arg("from"),
        date_to=date_arg("to"),
        model_version=request.args.get("model_version") or None,
    )
    return jsonify(
        {"rows": found.rows, "total": found.total, "page": page, "per_page": per_page, "versions": history.versions()}
    )


@bp.get("/api/history/<int:row_id>/thumbnail")
def history_thumbnail(row_id: int):
    data = served().history.thumbnail(row_id)
    if data is None:
        raise ApiError(404, "not_found", f"no prediction {row_id} in the history")
    return Response(data, mimetype="image/jpeg")


@bp.delete("/api/history/<int:row_id>")
def history_delete(row_id: int):
    if not served().history.delete(row_id):
        raise ApiError(404, "not_found", f"no prediction {row_id} in the history")
    return Response(status=204)
