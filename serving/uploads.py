"""Reading a request: the uploaded photo(s) and the query parameters, each mistake a JSON 4xx.

Config keys: ``serve.max_upload_bytes``, ``serve.min_side``, ``serve.top_k``.
"""

from __future__ import annotations

import io
import re
from datetime import date

import numpy as np
from flask import Request, Response, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from core.images import ImageRejected, open_image
from core.model_input import SQUASH, to_model_input
from serving.errors import ApiError

DECODE_SIDE_FACTOR = 8
DECODE_FLOOR = 4_000_000

# what each verification failure means for a client: status, error code, message
_REJECTIONS = {
    "empty": (400, "empty_file", "is empty"),
    "not_an_image": (415, "unsupported_media_type", "is not a JPEG, PNG, GIF or WebP image"),
    "corrupt": (400, "corrupt_image", "could not be decoded"),
    "too_small": (422, "image_too_small", "is too small"),
    "decompression_bomb": (413, "image_too_large", "has too many pixels"),
    "too_large": (413, "image_too_large", "is too large"),
}


def rejection(exc: ImageRejected, name: str) -> ApiError:
    """The JSON 4xx for an image the server refuses, naming it (``name``: "the upload", "the photo")."""
    status, code, text = _REJECTIONS[exc.reason]
    detail = f" ({exc.detail.split(':')[0]})" if exc.reason in ("corrupt", "too_small") and exc.detail else ""
    return ApiError(status, code, f"{name} {text}{detail}")


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


def buffer_chunked_body(req: Request) -> None:
    """Read a chunked body (no Content-Length) up to the request's limit: 413 beyond it, as for a declared
    length. werkzeug would otherwise cut it at the limit without a word and parse the truncated upload."""
    chunked = req.environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if req.content_length is not None or not chunked or req.max_content_length is None:
        return
    data = req.environ["wsgi.input"].read(req.max_content_length + 1)
    if len(data) > req.max_content_length:
        raise RequestEntityTooLarge()
    req.environ["wsgi.input"] = io.BytesIO(data)  # from here on an ordinary body of known length
    req.environ["CONTENT_LENGTH"] = str(len(data))
    del req.environ["HTTP_TRANSFER_ENCODING"]
    req.__dict__.pop("content_length", None)  # werkzeug cached None (chunked)


DRAIN_CHUNK = 65536


def drain_unread_body(response: Response) -> Response:
    """``after_request``: what the app left unread of the request body is read and dropped, before the answer
    goes out.

    An answer given before the body is read (401, 403, 413, 415, 429, 503, …) otherwise leaves the body on
    the connection: gunicorn then closes it after a response that did not say so, and nginx, which keeps
    connections to gunicorn open for the next request, gives the next client on it — anyone — a 502. Read
    *before* the response is sent: afterwards nginx may already have sent the next request on the
    connection, and reading past this body would swallow it. Reads stop at ``Content-Length`` (werkzeug's
    stream); behind nginx the body is whole on nginx's side and within ``client_max_body_size``, so this is
    one local read: O(body) time, O(64 KiB) memory; answers that read their body pay nothing.
    """
    try:
        stream = request.stream
    except RequestEntityTooLarge:  # refused from its length, so never read: all of it is left
        stream = LimitedStream(request.environ["wsgi.input"], request.content_length or 0)
    try:
        while stream.read(DRAIN_CHUNK):
            pass
    except (OSError, ClientDisconnected):  # the peer went away: the connection is closed either way
        pass
    return response


def read_uploads(max_files: int, max_bytes: int) -> list[bytes]:
    """The repeated multipart field ``images`` of a batch request."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with repeated field 'images'")
    files = request.files.getlist("images")
    if not files:
        raise ApiError(400, "missing_images", "send the photos in the repeated multipart field 'images'")
    if len(files) > max_files:
        raise ApiError(413, "too_many_files", f"at most {max_files} files per request, got {len(files)}")
    blobs = []
    for index, file in enumerate(files):
        data = file.read()
        if len(data) > max_bytes:
            raise ApiError(413, "request_entity_too_large", f"file {index} is larger than {max_bytes} bytes")
        blobs.append(data)
    return blobs


def decoded_pixel_limit(image_size: int) -> int:
    """The most pixels an upload may decode to for a model taking ``image_size``² input: 8x its side each
    way, and at least 4 MP (12 MB of RGB), whatever the file declares."""
    return max((DECODE_SIDE_FACTOR * image_size) ** 2, DECODE_FLOOR)


def decode_upload(
    data: bytes, image_size: int, min_side: int = 1, name: str = "the upload", resize: str = SQUASH
) -> np.ndarray:
    """Verify uploaded bytes (the scraper's check, :func:`core.images.open_image`) into model input, decoding
    large JPEGs at reduced size and refusing what would decode to more than :func:`decoded_pixel_limit`."""
    try:
        img = open_image(data, min_side, fit=2 * image_size, max_decoded_pixels=decoded_pixel_limit(image_size))
    except ImageRejected as exc:
        raise rejection(exc, name) from None
    return to_model_input(img, image_size, resize)


def bounded_int(name: str, raw: str, low: int, high: int) -> int:
    """``raw`` as an integer in ``[low, high]``, else a 422 ``invalid_<name>``."""
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"invalid_{name}", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(422, f"invalid_{name}", f"{name} must be between {low} and {high}")
    return value


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter."""
    raw = request.args.get(name)
    return default if raw is None else bounded_int(name=name, raw=raw, low=low, high=high)


_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as a UUID or any opaque token


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header (IETF draft-ietf-httpapi-idempotency-key-header), or ``None``;
    422 ``invalid_idempotency_key`` when it is not 1-255 printable ASCII characters."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(raw.strip('"')):
        raise ApiError(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
    return raw.strip('"')


def date_arg(name: str) -> str | None:
    """An ISO date query parameter (``2026-11-22``), or ``None``."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise ApiError(422, f"invalid_{name}", f"{name} must be a date like 2026-11-22") from None


def parse_top_k(default: int, maximum: int) -> int:
    """The ``top_k`` query/form parameter, 1..number of classes."""
    raw = request.args.get("top_k") or (
        request.form.get("top_k") if request.mimetype == "multipart/form-data" else None
    )
    return min(default, maximum) if raw is None else bounded_int(name="top_k", raw=raw, low=1, high=maximum)
