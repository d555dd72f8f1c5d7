"""The JSON API: ``POST /predict``, ``POST /predict/batch``, ``POST /explain``, ``GET /metadata``,
``POST /api/feedback`` (a user's correction of an answer, :mod:`serving.feedback`).

Each takes ``?model=stj|imagenet`` (default ``stj``) and ``?version=N`` (a registered version; default: the
alias's); an unknown model or version is a 404 JSON error.

Every inference goes through the one inference service (one bounded queue). A request resolves its model
once: the photo is decoded for that model and that same model scores it, so an alias moving mid-request
(even to a version with another input size) cannot mix them; each response names the model version that
computed it (body and ``X-Model-*`` headers agree). Each prediction is also queued for the prediction log
(``serving.prediction_log``) under the request's id (``X-Request-Id``, the client's or a new one); each answer
carries its ``prediction_id`` (that id and its place in the request), which a correction names.

Config keys: ``serve.top_k``, ``serve.min_side``, ``serve.max_files``, ``serve.max_upload_bytes``,
``monitor.log_predictions``.
"""

from __future__ import annotations

import re
import uuid

from flask import Blueprint, Response, g, jsonify, request

from serving.auth import json_body, owner
from serving.errors import ApiError
from serving.explain import overlay_png
from serving.feedback import prediction_id
from serving.history import thumbnail_jpeg
from serving.models import DEFAULT, Route
from serving.predictor import Assessed, Predictor
from serving.state import served
from serving.uploads import idempotency_key, parse_top_k, read_upload, read_uploads

bp = Blueprint("api", __name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def prediction(model: Predictor, assessed: Assessed, row: int, top_k: int) -> dict:
    """The JSON body of one prediction (``row`` of the batch ``assessed``): with a "none of these" index,
    ``in_distribution`` and ``ood_score`` too."""
    ranked = model.top_k(assessed.probs[row], top_k)
    return {
        "label": ranked[0]["label"],
        "confidence": ranked[0]["probability"],
        "top_k": ranked,
        **assessed.verdict(row),
        "model": {"name": model.ref.name, "version": model.ref.version},
    }


def mirror(route: Route, blobs: list[bytes], model: Predictor, labels: list[str]) -> None:
    """Offer the photos the champion answered to the challenger in shadow (live traffic on the followed
    classifier only: not a pinned version, not the ImageNet model)."""
    state = served()
    if state.shadow is not None and route is state.models.routes[DEFAULT]:
        for data, label in zip(blobs, labels, strict=True):
            state.shadow.offer(data, model, label)


def request_id() -> str:
    """This request's id: the client's ``X-Request-Id`` when it is a plain token (at most 64 of letters,
    digits, ``.``, ``_``, ``-``), else a new one; answered in ``X-Request-Id``."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


def remember(model: Predictor, assessed: Assessed, answers: list[dict]) -> None:
    """Give each answer its ``prediction_id`` and queue the answers for the prediction log (when it is on);
    never waits."""
    log, rid = served().log, request_id()
    for position, answer in enumerate(answers):
        answer["prediction_id"] = prediction_id(rid, position)
        if log is not None:
            log.record(model.ref, assessed, position, answer["top_k"], rid, position)


def requested_route() -> Route:
    """The model a request asks for: ``?model=stj|imagenet`` (default ``stj``), ``?version=N``."""
    return served().models.route(request.args.get("model"), request.args.get("version"))


@bp.post("/predict")
def predict():
    state, route = served(), requested_route()
    keep = request.args.get("history") == "1"  # the web page keeps its predictions; API callers opt in
    keeper = owner() if keep else None  # before the work: an anonymous request for a history is a 401
    idempotency_key()  # a malformed key is a 422 before the work too
    model = route.current()
    top_k = parse_top_k(route.default_top_k, len(model.class_names))
    data = read_upload()
    pixels = state.decode(data, model)
    assessed, g.model = route.inference.predict(pixels, model)
    body = prediction(g.model, assessed, 0, top_k)
    mirror(route, [data], g.model, [body["label"]])
    remember(g.model, assessed, [body])
    if keep:
        body["history_id"] = state.history.add(
            owner=keeper,
            label=body["label"],
            confidence=body["confidence"],
            model_name=g.model.ref.name,
            model_version=str(g.model.ref.version),
            top_k=body["top_k"],
            thumbnail=thumbnail_jpeg(pixels),
            idempotency_key=idempotency_key(),
        )
    return jsonify(body)


@bp.post("/predict/batch")
def predict_batch():
    state, route = served(), requested_route()
    model, serve = route.current(), state.config.serve
    top_k = parse_top_k(route.default_top_k, len(model.class_names))
    blobs = read_uploads(serve.max_files, serve.max_upload_bytes)
    pixels = [state.decode(data, model, name=f"file {index}") for index, data in enumerate(blobs)]
    assessed, g.model = route.inference.predict_many(pixels, model)
    answers = [prediction(g.model, assessed, row, top_k) for row in range(len(blobs))]
    mirror(route, blobs, g.model, [answer["label"] for answer in answers])
    remember(g.model, assessed, answers)
    return jsonify({"predictions": answers, "model": {"name": g.model.ref.name, "version": g.model.ref.version}})


@bp.post("/explain")
def explain():
    state, route = served(), requested_route()
    model = route.current()
    pixels = state.decode(read_upload(), model)
    (heat, target), g.model = route.inference.explain(pixels, model)
    response = Response(overlay_png(pixels, heat), mimetype="image/png")
    response.headers["X-Explained-Label"] = g.model.class_names[target]
    return response


@bp.get("/metadata")
def metadata():
    state = served()
    model, config = requested_route().current(), state.config
    return jsonify(
        {
            "model": {
                "name": model.ref.name,
                "version": model.ref.version,
                "uri": config.model_uri
                if model is state.holder.current()
                else f"models:/{model.ref.name}/{model.ref.version}",
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
            "models": state.models.describe(),
        }
    )


@bp.post("/api/feedback")
def feedback():
    """A signed-in user's correction of an answer: JSON ``{"prediction_id", "class"}``, or the same as
    multipart fields with the photo in ``image`` (kept: the user's consent). 201 with the stored correction."""
    state = served()
    if state.feedback is None:
        raise ApiError(403, "accounts_off", "corrections need accounts (serve.auth), so that each has an author")
    user = owner()  # 401 for an anonymous request
    model = state.holder.current()
    if request.mimetype == "multipart/form-data":
        body, upload = request.form.to_dict(), request.files.get("image")
        photo = upload.read() if upload is not None else None
        if photo:
            photo = state.keep_photo(photo)  # an image the server can read, kept as the scraper keeps one; or a 4xx
    else:
        body, photo = json_body(), None
    return jsonify(state.feedback.add(user, body, model.class_names, photo or None)), 201
