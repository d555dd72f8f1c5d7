"""The Flask application factory: state, error handlers, and one blueprint per area.

It serves STJ's classifier and, when registered, the ImageNet top-5 model (``serving.models``); a share of the
classifier's predictions is mirrored to ``@challenger`` when there is one (``serving.shadow``).

Blueprints: ``serving.api`` (predict, batch, explain, metadata), ``serving.auth`` (accounts and API tokens),
``serving.ops`` (health, ready, metrics, OpenAPI), ``serving.pages`` (the web pages and the history) and
``serving.offline`` (manifest, service worker, the model for the browser), ``serving.review_api`` (the admin's
``/review`` of corrections).
``serving.security`` adds the Host allow-list, the same-origin check and the security headers. Every response carries the model name and
version (``X-Model-Name``, ``X-Model-Version``): the model that computed it for inference routes, the
current one otherwise. Every client mistake is a JSON 4xx ``{"error": {"code", "message"}}``.

Config keys: everything under ``serve``; ``tracking.uri`` and ``serve.model_uri`` for loading.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, Response, g, request

from configs.schema import Config
from serving import api, auth, offline, ops, pages, review_api
from serving.accounts import Accounts
from serving.batcher import Overloaded
from serving.browser_model import BrowserModels
from serving.database import Database, RowIdConverter
from serving.errors import error_body, register_error_handlers
from serving.feedback import Feedback
from serving.history import History
from serving.metrics import ServerMetrics
from serving.models import DEFAULT, IMAGENET, ModelRoutes, load_followed
from serving.multipart import accept_latin1_part_headers
from serving.prediction_log import PredictionLog
from serving.predictor import Predictor
from serving.reloader import ModelHolder
from serving.review import Review
from serving.security import install_security
from serving.shadow import Shadow
from serving.shadow_process import IdleChallenger
from serving.state import EXTENSION, Served
from serving.uploads import buffer_chunked_body, drain_unread_body


def create_app(config: Config, predictor: Predictor | None = None, imagenet: Predictor | None = None) -> Flask:
    """Build the app; loads the configured models (and follows their aliases) unless predictors are given."""
    serve = config.serve
    accept_latin1_part_headers()
    app = Flask("stj", static_folder=str(pages.STATIC), static_url_path="/static")
    app.url_map.converters["rowid"] = RowIdConverter
    app.config["MAX_CONTENT_LENGTH"] = serve.max_upload_bytes * serve.max_files
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    register_error_handlers(app)
    install_security(app, serve)
    database = Database(serve.database_url)
    app.secret_key = database.secret()
    store = Accounts(database)  # its tables exist in every mode: history rows refer to users
    accounts = store if serve.auth != "none" else None
    auth.install_login(app, accounts, serve.auth)
    metrics = ServerMetrics()

    def on_swap(current: Predictor) -> None:
        metrics.serving(current.ref.name, str(current.ref.version))

    if predictor is None:
        followed = load_followed(config, on_swap)
    else:
        followed = {DEFAULT: ModelHolder(predictor, on_swap=on_swap)}
        if imagenet is not None:
            followed[IMAGENET] = ModelHolder(imagenet)
    models = ModelRoutes(config, followed, on_batch=metrics.batch.observe)
    decodes = threading.BoundedSemaphore(serve.decode_concurrency)
    shadow = None
    if predictor is None and serve.shadow_share > 0:
        shadow = Shadow(
            config,
            champion=models.default.current,
            champion_idle=lambda: models.routes[DEFAULT].inference.idle,
            metrics=metrics,
            load=lambda uri: IdleChallenger(uri, config.tracking.uri, serve.runtime),
        )
    feedback = Feedback(database) if accounts is not None else None
    app.extensions[EXTENSION] = Served(
        config,
        models,
        History(database),
        accounts,
        metrics,
        decodes,
        BrowserModels(serve.browser_model_dir) if serve.browser_model else None,
        shadow,
        PredictionLog(database, config.monitor, metrics) if config.monitor.log_predictions else None,
        feedback,
        Review(feedback, config.project.data_dir, config.tracking.uri) if feedback is not None else None,
    )

    if shadow is not None:  # the challenger's process computes only while this worker has no request

        @app.before_request
        def _pause_challenger() -> None:
            shadow.request_started()
            g.shadow_paused = True

        @app.teardown_request
        def _resume_challenger(_error: BaseException | None) -> None:
            if g.pop("shadow_paused", False):  # an earlier hook may have answered before ours ran
                shadow.request_finished()

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        if request.endpoint != "api.predict_batch":  # the app-wide limit is sized for a full batch
            request.max_content_length = serve.max_upload_bytes
        buffer_chunked_body(request)

    @app.after_request
    def _stamp(response: Response) -> Response:
        model = g.get("model") or models.default.current()  # the model that answered, if one did
        response.headers["X-Model-Name"] = model.ref.name
        response.headers["X-Model-Version"] = str(model.ref.version)
        if "request_id" in g:  # a prediction's: the key of its rows in the prediction log
            response.headers["X-Request-Id"] = g.request_id
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    @app.errorhandler(Overloaded)
    def _overloaded(exc: Overloaded):
        return error_body("overloaded", str(exc)), 503, {"Retry-After": "1"}

    for blueprint in (api.bp, auth.bp, offline.bp, ops.bp, pages.bp, review_api.bp):
        app.register_blueprint(blueprint)
    if serve.proxy == "nginx":  # gunicorn facing clients itself keeps its own bounded drain, then closes
        app.after_request(drain_unread_body)
    return app
