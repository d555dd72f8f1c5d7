"""The installable app: web app manifest, service worker, offline page, and the served model for the browser.

The service worker (``/sw.js``, scope ``/``) caches the app shell and, as they pass, the browser runtime and
model files; with the server unreachable the page loads from that cache and classifies with the model in the
browser (``serving.browser_model``), saying which path answered.

Config keys: ``serve.browser_model``, ``serve.browser_model_dir``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, send_from_directory

from serving.browser_model import FILE
from serving.errors import ApiError
from serving.pages import STATIC
from serving.state import served

bp = Blueprint("offline", __name__)
MANIFEST = {
    "name": "STJ product classifier",
    "short_name": "STJ",
    "description": "Saree, trousers or jeans? Classifies product photos, even offline.",
    "start_url": "/",
    "scope": "/",
    "display": "standalone",
    "background_color": "#f6f4f0",
    "theme_color": "#1d2433",
    "icons": [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
    ],
}


@bp.get("/manifest.webmanifest")
def manifest():
    response = jsonify(MANIFEST)
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker():
    response = send_from_directory(STATIC, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"  # a new worker is picked up on the next visit
    return response


@bp.get("/offline")
def offline_page():
    return send_from_directory(STATIC, "offline.html")


def _browser_models():
    state = served()
    if state.browser is None:
        raise ApiError(404, "browser_model_disabled", "this server does not offer its model to browsers")
    return state, state.browser


@bp.get("/browser-model/meta.json")
def browser_model_meta():
    state, models = _browser_models()
    response = jsonify(models.describe(state.holder.current()))
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/browser-model/<name>/<version>/model.onnx")
def browser_model_file(name: str, version: str):
    _, models = _browser_models()
    folder = models.folder / f"{name}-{version}" / "onnx"
    if not (folder / FILE).is_file():
        raise ApiError(404, "not_found", f"no browser export of {name} version {version}")
    response = send_from_directory(folder, FILE, mimetype="application/octet-stream", max_age=365 * 86400)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"  # a version never changes
    return response
