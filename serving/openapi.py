"""The OpenAPI 3 description of the HTTP API, served at ``GET /openapi.json``."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _json_op(summary: str, errors: tuple[int, ...], body: dict | None = None, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {ok: {"description": "ok"}, **_errors(*errors)}}
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
        }
    return op


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_STRING = {"type": "string"}
_ACCOUNT_PATHS = {
    "/api/signup": {"post": _json_op("Create an account (and sign in)", (403, 409, 415, 422), {"email": _STRING, "password": _STRING}, "201")},
    "/api/login": {"post": _json_op("Sign in (a session cookie)", (401, 415, 429), {"email": _STRING, "password": _STRING})},
    "/api/logout": {"post": _json_op("Sign out (every session of the account)", (403,), ok="204")},
    "/api/me": {"get": _json_op("The auth mode and who is signed in", ())},
    "/api/account": {"delete": _json_op("Delete the account, its history and tokens", (401, 403, 415), {"password": _STRING}, "204")},
    "/api/tokens": {
        "get": _json_op("Your API tokens (never their secrets); signed-in page only", (401, 403)),
        "post": _json_op("Make an API token (the answer holds it, once)", (401, 415, 422), {"name": _STRING}, "201"),
    },
    "/api/tokens/{id}": {"delete": {**_json_op("Revoke a token (a token: only itself)", (401, 403, 404), ok="204"), "parameters": _ID}},
    "/api/history": {"get": _json_op("Your past predictions (page, per_page, from, to, model_name, model_version)", (401, 422))},
    "/api/history/{id}": {"delete": {**_json_op("Delete one of your predictions", (401, 403, 404), ok="204"), "parameters": _ID}},
    "/api/about": {"get": _json_op("The served model's training run, scores and data (MLflow), and the last monitor report", ())},
    "/api/feedback": {"post": _json_op("Correct an answer: its prediction_id and the right class (multipart: with the photo in 'image', kept)", (401, 403, 415, 422), {"prediction_id": _STRING, "class": _STRING}, "201")},
    "/api/review": {"get": _json_op("Admins: users' flags, the served model's label issues and 'none of these' entries, with the latest decision per photo", (401, 403))},
    "/api/review/decisions": {"post": _json_op("Admins: decide about a listed photo (relabel/add need a class); the next run applies it", (401, 403, 415, 422), {"sha256": _STRING, "decision": {"type": "string", "enum": ["relabel", "exclude", "keep", "add"]}, "class": _STRING}, "201")},
    "/api/review/photo/{sha256}": {"get": {**_json_op("Admins: a listed photo's thumbnail (JPEG)", (401, 403, 404)), "parameters": [{"name": "sha256", "in": "path", "required": True, "schema": _STRING}]}},
}  # fmt: skip


def openapi_document(max_upload_bytes: int, max_files: int) -> dict[str, Any]:
    """The API document, with the configured limits filled in."""
    image_part = {
        "type": "string",
        "format": "binary",
        "description": f"JPEG, PNG, GIF or WebP, at most {max_upload_bytes} bytes",
    }
    top_k = {"name": "top_k", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}}
    prediction = {"$ref": "#/components/schemas/Prediction"}
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "with ?history=1: a retry with the same key stores nothing new and answers the first id",
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "STJ product classifier", "version": "1", "description": "saree / trousers / jeans"},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Classify one photo (multipart field 'image', or a raw image/* body)",
                    "parameters": [top_k, idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {"type": "object", "required": ["image"], "properties": {"image": image_part}}
                            },
                            "image/*": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "prediction", "content": {"application/json": {"schema": prediction}}},
                        **_errors(400, 401, 404, 413, 415, 422, 429, 503),
                    },
                }
            },
            "/predict/batch": {
                "post": {
                    "summary": f"Classify up to {max_files} photos (multipart field 'images', repeated)",
                    "parameters": [top_k],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["images"],
                                    "properties": {
                                        "images": {"type": "array", "items": image_part, "maxItems": max_files}
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one prediction per photo, in order",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "predictions": {"type": "array", "items": prediction},
                                            "model": {"$ref": "#/components/schemas/Model"},
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(400, 413, 415, 422),
                    },
                }
            },
            "/health": {"get": {"summary": "The process is alive", "responses": {"200": {"description": "ok"}}}},
            "/ready": {
                "get": {
                    "summary": "A model is loaded (and the last reload error, if any)",
                    "responses": {"200": {"description": "ready"}},
                }
            },
            "/metadata": {
                "get": {
                    "summary": "Classes, model name/version/alias, input size",
                    "responses": {"200": {"description": "metadata"}},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
            **_ACCOUNT_PATHS,
        },
        "security": [{}, {"bearer": []}],  # anonymous where serve.auth allows it, else an API token
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token made on /account"}
            },
            "schemas": {
                "Model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
                "Prediction": {
                    "type": "object",
                    "required": ["label", "confidence", "top_k", "model", "prediction_id"],
                    "properties": {
                        "prediction_id": {
                            "type": "string",
                            "description": "this answer's id (request id:position), for POST /api/feedback",
                        },
                        "label": {"type": "string"},
                        "confidence": {"type": "number"},
                        "top_k": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"label": {"type": "string"}, "probability": {"type": "number"}},
                            },
                        },
                        "in_distribution": {
                            "type": "boolean",
                            "description": "false: the photo is unlike every training photo (none of these); "
                            "absent for a model without an index (the ImageNet model)",
                        },
                        "ood_score": {
                            "type": "number",
                            "description": "cosine distance to the k-th nearest training photo's features; above the "
                            "model's threshold: not in distribution",
                        },
                        "model": {"$ref": "#/components/schemas/Model"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
            },
        },
    }
