"""The JSON API: ``POST /predict``, ``POST /predict/batch``, ``POST /explain``, ``GET /metadata``.

Every inference goes through the one inference service (one bounded queue); each response names the model
version that computed it (body and ``X-Model-*`` headers agree, even across a hot reload).

Config keys: ``serve.top_k``, ``serve.min_side``, ``serve.max_files``, ``serve.max_upload_bytes``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Blueprint, Response, g, jsonify, request

from serving.explain import overlay_png
from serving.history import thumbnail_jpeg
from serving.state import served
from serving.uploads import decode_upload, parse_top_k, read_upload, read_uploads

bp = Blueprint("api", __name__)


def prediction(model: Any, probs: np.ndarray, top_k: int) -> dict:
    """The JSON body of one prediction."""
    ranked = model.top_k(probs, top_k)
    return {
        "label": ranked[0]["label"],
        "confidence": ranked[0]["probability"],
        "top_k": ranked,
        "model": {"name": model.ref.name, "version": model.ref.version},
    }


@bp.post("/predict")
def predict():
    state = served()
    model, serve = state.holder.current(), state.config.serve
    top_k = parse_top_k(serve.top_k, len(model.class_names))
    pixels = decode_upload(read_upload(), model.image_size, serve.min_side)
    probs, g.model = state.inference.predict(pixels)
    body = prediction(g.model, probs, top_k)
    if request.args.get("history") == "1":  # the web page keeps its predictions; API callers opt in
        body["history_id"] = state.history.add(
            label=body["label"],
            confidence=body["confidence"],
            model_version=str(g.model.ref.version),
            top_k=body["top_k"],
            thumbnail=thumbnail_jpeg(pixels),
        )
    return jsonify(body)


@bp.post("/predict/batch")
def predict_batch():
    state = served()
    model, serve = state.holder.current(), state.config.serve
    top_k = parse_top_k(serve.top_k, len(model.class_names))
    blobs = read_uploads(serve.max_files, serve.max_upload_bytes)
    pixels = [
        decode_upload(data, model.image_size, serve.min_side, name=f"file {index}") for index, data in enumerate(blobs)
    ]
    probs, g.model = state.inference.predict_many(pixels)
    return jsonify(
        {
            "predictions": [prediction(g.model, row, top_k) for row in probs],
            "model": {"name": g.model.ref.name, "version": g.model.ref.version},
        }
    )


@bp.post("/explain")
def explain():
    state = served()
    model = state.holder.current()
    pixels = decode_upload(read_upload(), model.image_size, state.config.serve.min_side)
    (heat, target), g.model = state.inference.explain(pixels)
    response = Response(overlay_png(pixels, heat), mimetype="image/png")
    response.headers["X-Explained-Label"] = g.model.class_names[target]
    return response


@bp.get("/metadata")
def metadata():
    state = served()
    model, config = state.holder.current(), state.config
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
                "max_upload_bytes": config.serve.max_upload_bytes,
                "max_files": config.serve.max_files,
            },
            "runtime": model.runtime.name,
        }
    )
