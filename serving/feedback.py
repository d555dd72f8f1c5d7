"""Users' corrections: "Wrong? Pick the right class" on the page, ``POST /api/feedback`` for API clients.

A correction names a prediction (the ``prediction_id`` every answer carries: ``<request id>:<position>``) and
the class the user says is right. It is stored with what the prediction log knows of that prediction (model,
version, the answered label; nothing when the log is off or did not sample it) and, when the user sends the
photo with it, the photo itself and its SHA-256: flagging is the user's consent to keep that one photo (the
page says so); nothing else of theirs is kept. The photo is kept as the scraper keeps one (re-encoded by
``core.images.clean_image``), so its SHA-256 is how a correction meets a scraped photo of the data set (the
same picture). Table ``feedback`` in the server's database, so every replica's corrections are
in one place; one insert per correction, read by the newest first through an index.

Config keys: ``serve.database_url``, ``serve.max_upload_bytes``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from sqlalchemy import inspect, text

from serving.database import Database
from serving.errors import ApiError

PREDICTION_ID = re.compile(r"([A-Za-z0-9._-]{1,64}):([0-9]{1,4})")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id {id},
    created_at TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    prediction_id TEXT NOT NULL,
    model_name TEXT,
    model_version TEXT,
    label TEXT,
    corrected TEXT NOT NULL,
    sha256 TEXT,
    photo {blob}
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created_at);
CREATE INDEX IF NOT EXISTS feedback_sha256 ON feedback (sha256);
CREATE INDEX IF NOT EXISTS feedback_prediction ON feedback (prediction_id)
"""


def prediction_id(request_id: str, position: int) -> str:
    """The id an answer carries: its request's id and its place in the request."""
    return f"{request_id}:{position}"


class Feedback:
    """The ``feedback`` table: corrections in, newest first out."""

    def __init__(self, database: Database) -> None:
        self.database = database
        database.schema(_SCHEMA)

    def add(self, user_id: int | None, body: dict, classes: list[str], photo: bytes | None) -> dict:
        """Store one correction; ``body`` holds ``prediction_id`` and ``class`` (one of ``classes``). Returns
        the stored row (without the photo).

        Raises:
            ApiError: 422 naming the missing or bad field.
        """
        given = body.get("prediction_id")
        if not isinstance(given, str) or not (match := PREDICTION_ID.fullmatch(given)):
            raise ApiError(422, "bad_prediction_id", "send 'prediction_id' as an answer gave it (request id:position)")
        corrected = body.get("class")
        if corrected not in classes:
            raise ApiError(422, "bad_class", f"send 'class' as one of: {', '.join(classes)}")
        known = self._logged(match.group(1), int(match.group(2)))
        row = {
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "user_id": user_id,
            "prediction_id": given,
            "model_name": known.get("model_name"),
            "model_version": known.get("model_version"),
            "label": known.get("label"),
            "corrected": corrected,
            "sha256": hashlib.sha256(photo).hexdigest() if photo else None,
            "photo": photo,
        }
        columns = ", ".join(row)
        with self.database.write() as db:
            statement = f"INSERT INTO feedback ({columns}) VALUES ({', '.join(':' + c for c in row)}) RETURNING id"
            row_id = db.execute(text(statement), row).scalar_one()
        return {"id": row_id, **{k: v for k, v in row.items() if k not in ("photo", "user_id")}}

    def latest(self, limit: int = 50) -> list[dict]:
        """The newest corrections (without photos; ``has_photo`` says whether one was kept)."""
        query = text(
            "SELECT id, created_at, prediction_id, model_name, model_version, label, corrected, sha256, "
            "photo IS NOT NULL AS has_photo FROM feedback ORDER BY id DESC LIMIT :limit"
        )
        with self.database.read() as db:
            return [
                dict(row) | {"has_photo": bool(row["has_photo"])}
                for row in db.execute(query, {"limit": limit}).mappings()
            ]

    def photo(self, sha256: str) -> bytes | None:
        """The kept photo with this SHA-256 (from any correction that sent it), or ``None``."""
        query = text("SELECT photo FROM feedback WHERE sha256 = :sha AND photo IS NOT NULL LIMIT 1")
        with self.database.read() as db:
            found = db.execute(query, {"sha": sha256}).scalar()
        return bytes(found) if found is not None else None

    def _logged(self, request_id: str, position: int) -> dict:
        """What the prediction log holds of a prediction (empty when it was not logged)."""
        query = text(
            "SELECT model_name, model_version, label FROM prediction_log WHERE request_id = :rid AND position = :pos "
            "ORDER BY id DESC LIMIT 1"
        )
        if not inspect(self.database.engine).has_table("prediction_log"):  # the log never ran here
            return {}
        with self.database.read() as db:
            found = db.execute(query, {"rid": request_id, "pos": position}).mappings().first()
        return dict(found) if found else {}
