"""The web pages (``/``, ``/history``, ``/login``, ``/account``, ``/docs``, ``/about``), the history's JSON API
(``/api/history``) and the about page's facts (``/api/about``).

Each signed-in user sees only their own history: another user's row answers 404, as if it did not exist.

Config keys: ``serve.database_url``, ``serve.auth``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_from_directory

from serving.about import about
from serving.auth import owner
from serving.errors import ApiError
from serving.state import served
from serving.uploads import date_arg, int_arg

STATIC = Path(__file__).parent / "static"

bp = Blueprint("pages", __name__)


# endpoint -> (path, file): each page is a static file; its script asks the JSON API for what it shows
PAGES = {
    "index": ("/", "index.html"),
    "history_page": ("/history", "history.html"),
    "login_page": ("/login", "login.html"),
    "account_page": ("/account", "account.html"),
    "about_page": ("/about", "about.html"),
    "docs": ("/docs", "docs.html"),
}


def _static_page(file: str):
    return lambda: send_from_directory(STATIC, file)


for _endpoint, (_path, _file) in PAGES.items():
    bp.add_url_rule(_path, _endpoint, _static_page(_file), methods=["GET"])


@bp.get("/api/about")
def about_facts():
    state = served()
    return jsonify({**about(state.config.tracking.uri, state.holder.current()), "monitor": state.latest_monitor()})


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(STATIC, "icon.svg", mimetype="image/svg+xml")


@bp.get("/api/history")
def history_list():
    history, keeper = served().history, owner()
    page, per_page = (
        int_arg(name="page", default=1, low=1, high=100000),
        int_arg(name="per_page", default=20, low=1, high=100),
    )
    found = history.page(
        owner=keeper,
        page=page,
        per_page=per_page,
        date_from=date_arg("from"),
        date_to=date_arg("to"),
        model_version=request.args.get("model_version") or None,
        model_name=request.args.get("model_name") or None,
    )
    return jsonify(
        {
            "rows": found.rows,
            "total": found.total,
            "page": page,
            "per_page": per_page,
            "versions": history.versions(keeper),
            "models": history.models(keeper),
        }
    )


@bp.get("/api/history/<rowid:row_id>/thumbnail")
def history_thumbnail(row_id: int):
    data = served().history.thumbnail(row_id, owner())
    if data is None:
        raise ApiError(404, "not_found", f"no prediction {row_id} in the history")
    return Response(data, mimetype="image/jpeg")


@bp.delete("/api/history/<rowid:row_id>")
def history_delete(row_id: int):
    if not served().history.delete(row_id, owner()):
        raise ApiError(404, "not_found", f"no prediction {row_id} in the history")
    return Response(status=204)
