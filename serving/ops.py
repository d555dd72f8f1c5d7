"""Operations: ``GET /health``, ``/ready``, ``/metrics`` (Prometheus) and ``/openapi.json``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from serving.openapi import openapi_document
from serving.state import served

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    state = served()
    model, shadow = state.holder.current(), state.shadow
    challenger = shadow.challenger if shadow else None
    return jsonify(
        {
            "status": "ready",
            "model": {"name": model.ref.name, "version": model.ref.version},
            "runtime": model.runtime.name,
            "last_reload_error": state.holder.last_error,
            "challenger": {
                "version": challenger.ref.version if challenger else None,
                "last_error": shadow.last_error if shadow else None,
            },
        }
    )


@bp.get("/metrics")
def prometheus():
    state = served()
    state.metrics.monitor_report(state.latest_monitor())
    return Response(state.metrics.exposition(), mimetype="text/plain; version=0.0.4")


@bp.get("/openapi.json")
def openapi():
    serve = served().config.serve
    return jsonify(openapi_document(serve.max_upload_bytes, serve.max_files))
