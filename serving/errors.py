"""JSON errors for the API: every failure is ``{"error": {"code", "message"}}`` with a 4xx status."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """A client mistake with its HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict:
    """The error payload."""
    return {"error": {"code": code, "message": message}}


def register_error_handlers(app: Flask) -> None:
    """Answer API errors, werkzeug's HTTP errors (404, 405, 413, ...) and anything unexpected as JSON."""

    @app.errorhandler(ApiError)
    def _api(err: ApiError):
        return jsonify(error_body(err.code, err.message)), err.status, err.headers

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        if err.code == 413:
            message = f"upload larger than {request.max_content_length} bytes"
        else:
            message = err.description or err.name
        return jsonify(error_body(code, message)), err.code or 500

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        app.logger.exception("unexpected error")
        return jsonify(error_body("internal_error", "the server failed to handle this request")), 500
