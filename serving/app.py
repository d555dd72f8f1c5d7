"""The Flask app: ``POST /predict``, ``POST /predict/batch``, ``POST /explain``, ``GET /health|/ready|/metadata|
/metrics|/openapi.json``, the web page (``/``), the history page (``/history``) and its API (``/api/history``).

Every response carries the model name and version (``X-Model-Name``, ``X-Model-Version`` headers; in the
body of predictions too). Every client mistake is a JSON 4xx ``{"error": {"code", "message"}}``.

Config keys: ``serve.max_upload_bytes``, ``serve.top_k``, ``serve.max_files``, ``serve.min_side``,
``serve.max_batch``, ``serve.max_wait_ms``, ``serve.queue_size``, ``serve.reload_interval_s``,
``serve.history_path``.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np
from flask import Flask, Response, g, jsonify, request, send_from_directory

from configs.schema import Config
from core.images import ImageRejected, open_image
from core.model_input import to_model_input
from serving.batcher import MicroBatcher, Overloaded
from serving.errors import ApiError, register_error_handlers
from serving.explain import grad_cam, overlay_png
from serving.history import History, thumbnail_jpeg
from serving.metrics import ServerMetrics
from serving.openapi import openapi_document
from serving.predictor import Predictor, alias_version
from serving.reloader import ModelHolder, start_reloader


def read_upload() -> bytes:
    """The uploaded image bytes: multipart field ``image`` or a raw body with an ``image/*`` content type."""
    if request.mimetype == "multipart/form-data":
        file = request.files.get("image")
        if file is None:
            raise ApiError(400, "missing_image", "send the photo in the multipart field 'image'")
        return file.read()
    if request.mimetype.startswith("image/"):
        return request.get_data()
    raise ApiError(415, "unsupported_media_type", "send multipart/form-data with field 'image', or an image/* body")


# what each verification failure means for a client: status, error code, message
_REJECTIONS = {
    "empty": (400, "empty_file", "is empty"),
    "not_an_image": (415, "unsupported_media_type", "is not a JPEG, PNG, GIF or WebP image"),
    "corrupt": (400, "corrupt_image", "could not be decoded"),
    "too_small": (422, "image_too_small", "is too small"),
    "decompression_bomb": (413, "image_too_large", "has too many pixels"),
}


def decode_upload(data: bytes, image_size: int, min_side: int = 1, name: str = "the upload") -> np.ndarray:
    """Verify uploaded bytes (the scraper's check, :func:`core.images.open_image`) into model input."""
    try:
        img = open_image(data, min_side)
    except ImageRejected as exc:
        status, code, text = _REJECTIONS[exc.reason]
        detail = f" ({exc.detail.split(':')[0]})" if exc.reason in ("corrupt", "too_small") and exc.detail else ""
        raise ApiError(status, code, f"{name} {text}{detail}") from None
    return to_model_input(img, image_size)


def parse_top_k(default: int, maximum: int) -> int:
    """The ``top_k`` query/form parameter, 1..number of classes."""
    raw = request.args.get("top_k") or (
        request.form.get("top_k") if request.mimetype == "multipart/form-data" else None
    )
    return min(default, maximum) if raw is None else _bounded_int("top_k", raw, 1, maximum)


def _bounded_int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"invalid_{name}", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(422, f"invalid_{name}", f"{name} must be between {low} and {high}")
    return value


STATIC = Path(__file__).parent / "static"


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    return default if raw is None else _bounded_int(name, raw, low, high)


def _date_arg(name: str) -> str | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise ApiError(422, f"invalid_{name}", f"{name} must be a date like 2026-11-22") from None


def _prediction(model: Predictor, probs: np.ndarray, top_k: int) -> dict:
    ranked = model.top_k(probs, top_k)
    return {
        "label": ranked[0]["label"],
        "confidence": ranked[0]["probability"],
        "top_k": ranked,
        "model": {"name": model.ref.name, "version": model.ref.version},
    }


def create_app(config: Config, predictor: Predictor | None = None) -> Flask:
    """Build the app; loads the configured model (and follows its alias) unless a predictor is given."""
    serve = config.serve
    app = Flask("stj", static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = serve.max_upload_bytes * serve.max_files
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    register_error_handlers(app)
    metrics = ServerMetrics()
    holder = ModelHolder(
        predictor or Predictor.load(config.model_uri, config.tracking.uri, serve.runtime),
        on_swap=lambda current: metrics.serving(current.ref.name, str(current.ref.version)),
    )
    if predictor is None:
        start_reloader(
            holder,
            lambda: alias_version(config.model_uri, config.tracking.uri),
            lambda version: Predictor.load(
                f"models:/{holder.current().ref.name}/{version}", config.tracking.uri, serve.runtime
            ),
            serve.reload_interval_s,
        )
    history = History(serve.history_path)
    batcher = MicroBatcher(
        holder.current, serve.max_batch, serve.max_wait_ms, serve.queue_size, on_batch=metrics.batch.observe
    )

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()
        if request.endpoint != "predict_batch":  # the app-wide limit is sized for a full batch
            request.max_content_length = serve.max_upload_bytes

    @app.after_request
    def _stamp(response: Response) -> Response:
        model = holder.current()
        response.headers["X-Model-Name"] = model.ref.name
        response.headers["X-Model-Version"] = str(model.ref.version)
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    @app.get("/ready")
    def ready():
        model = holder.current()
        return jsonify(
            {
                "status": "ready",
                "model": {"name": model.ref.name, "version": model.ref.version},
                "runtime": model.runtime.name,
                "last_reload_error": holder.last_error,
            }
        )

    @app.get("/metadata")
    def metadata():
        model = holder.current()
        return jsonify(
            {
                "model": {
                    "name": model.ref.name,
                    "version": model.ref.version,
                    "uri": config.model_uri,
                    "alias": config.tracking.alias if "@" in config.model_uri else None,
                },
                "classes": model.class_names,
                "input": {
                    "image_size": model.image_size,
                    "formats": ["jpeg", "png", "gif", "webp"],
                    "max_upload_bytes": serve.max_upload_bytes,
                    "max_files": serve.max_files,
                },
                "runtime": model.runtime.name,
            }
        )

    @app.get("/metrics")
    def prometheus():
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi():
        return jsonify(openapi_document(serve.max_upload_bytes, serve.max_files))

    @app.post("/predict")
    def predict():
        model = holder.current()
        top_k = parse_top_k(serve.top_k, len(model.class_names))
        pixels = decode_upload(read_upload(), model.image_size, serve.min_side)
        try:
            probs, used = batcher.submit(pixels)
        except Overloaded as exc:
            response = jsonify({"error": {"code": "overloaded", "message": str(exc)}})
            response.headers["Retry-After"] = "1"
            return response, 503
        body = _prediction(used, probs, top_k)
        if request.args.get("history") == "1":  # the web page keeps its predictions; API callers opt in
            body["history_id"] = history.add(
                body["label"], body["confidence"], str(used.ref.version), body["top_k"], thumbnail_jpeg(pixels)
            )
        return jsonify(body)

    @app.post("/explain")
    def explain():
        model = holder.current()
        pixels = decode_upload(read_upload(), model.image_size, serve.min_side)
        heat, target = grad_cam(model.model, pixels)
        response = Response(overlay_png(pixels, heat), mimetype="image/png")
        response.headers["X-Explained-Label"] = model.class_names[target]
        return response

    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/history")
    def history_page():
        return send_from_directory(STATIC, "history.html")

    @app.get("/api/history")
    def history_list():
        page, per_page = _int_arg("page", 1, 1, 100000), _int_arg("per_page", 20, 1, 100)
        found = history.page(
            page, per_page, _date_arg("from"), _date_arg("to"), request.args.get("model_version") or None
        )
        return jsonify(
            {
                "rows": found.rows,
                "total": found.total,
                "page": page,
                "per_page": per_page,
                "versions": history.versions(),
            }
        )

    @app.get("/api/history/<int:row_id>/thumbnail")
    def history_thumbnail(row_id: int):
        data = history.thumbnail(row_id)
        if data is None:
            raise ApiError(404, "not_found", f"no prediction {row_id} in the history")
        return Response(data, mimetype="image/jpeg")

    @app.delete("/api/history/<int:row_id>")
    def history_delete(row_id: int):
        if not history.delete(row_id):
            raise ApiError(404, "not_found", f"no prediction {row_id} in the history")
        return Response(status=204)

    @app.post("/predict/batch")
    def predict_batch():
        model = holder.current()  # one model for the whole request
        top_k = parse_top_k(serve.top_k, len(model.class_names))
        if request.mimetype != "multipart/form-data":
            raise ApiError(415, "unsupported_media_type", "send multipart/form-data with repeated field 'images'")
        files = request.files.getlist("images")
        if not files:
            raise ApiError(400, "missing_images", "send the photos in the repeated multipart field 'images'")
        if len(files) > serve.max_files:
            raise ApiError(413, "too_many_files", f"at most {serve.max_files} files per request, got {len(files)}")
        pixels = []
        for index, file in enumerate(files):
            data = file.read()
            if len(data) > serve.max_upload_bytes:
                raise ApiError(
                    413, "request_entity_too_large", f"file {index} is larger than {serve.max_upload_bytes} bytes"
                )
            pixels.append(decode_upload(data, model.image_size, serve.min_side, name=f"file {index}"))
        probs = model.predict(np.stack(pixels))
        metrics.batch.observe(len(pixels))
        return jsonify(
            {
                "predictions": [_prediction(model, row, top_k) for row in probs],
                "model": {"name": model.ref.name, "version": model.ref.version},
            }
        )

    return app
