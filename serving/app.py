"""The Flask app: ``POST /predict``, ``GET /health``, ``GET /ready``.

Config keys: ``serve.max_upload_bytes``, ``serve.top_k``.
"""

from __future__ import annotations

import warnings

from flask import Flask, jsonify, request
from PIL import Image

from configs.schema import Config
from scraper.images import sniff_format
from serving.errors import ApiError, register_error_handlers
from serving.predictor import Predictor
from training.images import decode_image


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


def decode_upload(data: bytes, image_size: int):
    """Validate bytes as an image (type sniffed from the bytes, not the name) and turn them into model input."""
    if not data:
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    if sniff_format(data) is None:
        raise ApiError(415, "unsupported_media_type", "the upload is not a JPEG, PNG, GIF or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return decode_image(data, image_size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, "image_too_large", "the image has too many pixels") from None
    except Exception as exc:  # Pillow raises many types for broken images
        raise ApiError(400, "corrupt_image", f"the image could not be decoded ({exc.__class__.__name__})") from None


def parse_top_k(default: int, maximum: int) -> int:
    """The ``top_k`` query/form parameter, 1..number of classes."""
    raw = request.args.get("top_k") or (
        request.form.get("top_k") if request.mimetype == "multipart/form-data" else None
    )
    if raw is None:
        return min(default, maximum)
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid_top_k", "top_k must be an integer") from None
    if not 1 <= value <= maximum:
        raise ApiError(422, "invalid_top_k", f"top_k must be between 1 and {maximum}")
    return value


def create_app(config: Config, predictor: Predictor | None = None) -> Flask:
    """Build the app; loads the configured model unless a predictor is given."""
    app = Flask("stj")
    app.config["MAX_CONTENT_LENGTH"] = config.serve.max_upload_bytes
    register_error_handlers(app)
    model = predictor or Predictor(config.model_uri, config.tracking.uri, config.serve.runtime)
    model_info = {"name": model.ref.name, "version": model.ref.version}

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    @app.get("/ready")
    def ready():
        return jsonify({"status": "ready", "model": model_info})

    @app.post("/predict")
    def predict():
        top_k = parse_top_k(config.serve.top_k, len(model.class_names))
        pixels = decode_upload(read_upload(), model.image_size)
        probs = model.predict(pixels[None])[0]
        ranked = model.top_k(probs, top_k)
        return jsonify(
            {
                "label": ranked[0]["label"],
                "confidence": ranked[0]["probability"],
                "top_k": ranked,
                "model": model_info,
            }
        )

    return app
