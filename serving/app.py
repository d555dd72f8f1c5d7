"""The Flask application factory: state, error handlers, and one blueprint per area.

Blueprints: ``serving.api`` (predict, batch, explain, metadata), ``serving.ops`` (health, ready, metrics,
OpenAPI) and ``serving.pages`` (the web page and its history). Every response carries the model name and
version (``X-Model-Name``, ``X-Model-Version``): the model that computed it for inference routes, the
current one otherwise. Every client mistake is a JSON 4xx ``{"error": {"code", "message"}}``.

Config keys: everything under ``serve``; ``tracking.uri`` and ``serve.model_uri`` for loading.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from configs.schema import Config
from serving import api, ops, pages
from serving.batcher import Overloaded
from serving.errors import error_body, register_error_handlers
from serving.history import History
from serving.inference import InferenceService
from serving.metrics import ServerMetrics
from serving.predictor import Predictor, alias_version
from serving.reloader import ModelHolder, start_reloader
from serving.state import EXTENSION, Served


def _load_and_follow(config: Config, on_swap) -> ModelHolder:
    """Load the configured model and keep following its alias in the background."""
    serve, tracking_uri = config.serve, config.tracking.uri
    holder = ModelHolder(Predictor.load(config.model_uri, tracking_uri, serve.runtime), on_swap=on_swap)
    start_reloader(
        holder=holder,
        latest_version=lambda: alias_version(config.model_uri, tracking_uri),
        load=lambda version: Predictor.load(
            f"models:/{holder.current().ref.name}/{version}", tracking_uri, serve.runtime
        ),
        interval_s=serve.reload_interval_s,
    )
    return holder


def create_app(config: Config, predictor: Predictor | None = None) -> Flask:
    """Build the app; loads the configured model (and follows its alias) unless a predictor is given."""
    serve = config.serve
    app = Flask("stj", static_folder=str(pages.STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = serve.max_upload_bytes * serve.max_files
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    register_error_handlers(app)
    metrics = ServerMetrics()

    def on_swap(current: Predictor) -> None:
        metrics.serving(current.ref.name, str(current.ref.version))

    holder = ModelHolder(predictor, on_swap=on_swap) if predictor is not None else _load_and_follow(config, on_swap)
    inference = InferenceService(holder.current, serve, on_batch=metrics.batch.observe)
    app.extensions[EXTENSION] = Served(
        config=config, holder=holder, inference=inference, history=History(serve.history_path), metrics=metrics
    )

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        if request.endpoint != "api.predict_batch":  # the app-wide limit is sized for a full batch
            request.max_content_length = serve.max_upload_bytes

    @app.after_request
    def _stamp(response: Response) -> Response:
        model = g.get("model") or holder.current()  # the model that answered, if one did
        response.headers["X-Model-Name"] = model.ref.name
        response.headers["X-Model-Version"] = str(model.ref.version)
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    @app.errorhandler(Overloaded)
    def _overloaded(exc: Overloaded):
        return error_body("overloaded", str(exc)), 503, {"Retry-After": "1"}

    for blueprint in (api.bp, ops.bp, pages.bp):
        app.register_blueprint(blueprint)
    return app
