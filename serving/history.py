"""Past predictions made from the web page, in the server's database: thumbnail, label, confidence, model
name and version, time, owner.

Each row belongs to one account (``user_id``); with ``serve.auth: none`` rows have no owner and form the one
shared history of a private, loopback-only server. Every query is scoped to one owner, so another account's row
is simply not found. A page is one indexed range query: O(page size), whatever the history's length.

Config keys: ``serve.database_url``, ``serve.auth``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import text

from serving.database import Database

_OWNER = "user_id INTEGER REFERENCES users(id) ON DELETE CASCADE"  # NULL: no accounts (serve.auth: none)
_IDEMPOTENCY = "idempotency_key TEXT"  # "<owner>:<the client's Idempotency-Key>"; NULL: none sent
_MODEL_NAME = "model_name TEXT"  # NULL: a row kept before the name was (the STJ classifier then)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS predictions (
    id {{id}},
    created_at TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence {{real}} NOT NULL,
    model_version TEXT NOT NULL,
    top_k TEXT NOT NULL,
    thumbnail {{blob}} NOT NULL,
    {_OWNER.replace("INTEGER", "BIGINT")},
    {_IDEMPOTENCY},
    {_MODEL_NAME}
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
CREATE INDEX IF NOT EXISTS predictions_owner ON predictions (user_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS predictions_once ON predictions (idempotency_key)
"""
_COLUMNS = ("id", "created_at", "label", "confidence", "model_name", "model_version", "top_k")


def thumbnail_jpeg(pixels, side: int = 128) -> bytes:
    """A small JPEG of a model-input image (float RGB array)."""
    img = Image.fromarray(pixels.clip(0, 255).astype("uint8"))
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


@dataclass(frozen=True)
class Page:
    """One page of history rows (newest first) and the total matching the filters."""

    rows: list[dict]
    total: int


class History:
    """Predictions in the server's database, each read and written on behalf of one owner (``None``: no accounts)."""

    def __init__(self, database: Database | str | Path) -> None:
        self.database = database if isinstance(database, Database) else Database(database)
        with self.database.legacy_sqlite() as old:  # a file from before accounts, idempotency keys or model names
            if old is not None and old.execute("SELECT 1 FROM sqlite_master WHERE name = 'predictions'").fetchone():
                present = {row[1] for row in old.execute("PRAGMA table_info(predictions)")}
                for column in (_OWNER, _IDEMPOTENCY, _MODEL_NAME):
                    if column.split()[0] not in present:
                        old.execute(f"ALTER TABLE predictions ADD COLUMN {column}")
        self.database.schema(_SCHEMA)
        if self.database.dialect == "postgresql" and "model_name" not in self.database.columns("predictions"):
            self.database.schema(f"ALTER TABLE predictions ADD COLUMN IF NOT EXISTS {_MODEL_NAME}")  # an older table

    def add(
        self,
        label: str,
        confidence: float,
        model_version: str,
        top_k: list[dict],
        thumbnail: bytes,
        owner: int | None = None,
        idempotency_key: str | None = None,
        model_name: str | None = None,
    ) -> int:
        """Store one prediction for ``owner``; returns its id. A write repeated with the same
        ``idempotency_key`` (a client retrying after a lost answer) stores nothing and returns the first id."""
        row = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "label": label,
            "confidence": confidence,
            "model_name": model_name,
            "model_version": model_version,
            "top_k": json.dumps(top_k),
            "thumbnail": thumbnail,
            "user_id": owner,
            "idempotency_key": f"{owner or 0}:{idempotency_key}" if idempotency_key else None,  # keys are per owner
        }
        names = ", ".join(row)
        with self.database.write() as db:
            new = db.execute(
                text(
                    f"INSERT INTO predictions ({names}) VALUES ({', '.join(':' + k for k in row)}) "
                    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
                ),
                row,
            ).scalar()
            if new is not None:
                return int(new)
            once = {"key": row["idempotency_key"]}
            return int(db.execute(text("SELECT id FROM predictions WHERE idempotency_key = :key"), once).scalar_one())

    def page(
        self,
        owner: int | None = None,
        page: int = 1,
        per_page: int = 20,
        date_from: str | None = None,
        date_to: str | None = None,
        model_version: str | None = None,
        model_name: str | None = None,
    ) -> Page:
        """``owner``'s rows newest first; ``date_from``/``date_to`` are ISO dates (inclusive), ``model_version``
        and ``model_name`` exact."""
        where, args = [_owned(owner)], {"owner": owner}
        if date_from:
            where.append("created_at >= :date_from")
            args["date_from"] = date_from
        if date_to and date_to < date.max.isoformat():  # the last day there is: no upper bound
            where.append("created_at < :date_to")  # the next day, from Python: SQL has no day after 9999-12-31
            args["date_to"] = (date.fromisoformat(date_to) + timedelta(days=1)).isoformat()
        if model_version:
            where.append("model_version = :model_version")
            args["model_version"] = model_version
        if model_name:
            where.append("model_name = :model_name")
            args["model_name"] = model_name
        clause = f"WHERE {' AND '.join(where)}"
        with self.database.read() as db:
            total = db.execute(text(f"SELECT COUNT(*) FROM predictions {clause}"), args).scalar_one()
            rows = db.execute(
                text(
                    f"SELECT {', '.join(_COLUMNS)} FROM predictions {clause} ORDER BY id DESC LIMIT :limit OFFSET :skip"
                ),
                {**args, "limit": per_page, "skip": (page - 1) * per_page},
            ).all()
        return Page([{**dict(zip(_COLUMNS, r, strict=True)), "top_k": json.loads(r[-1])} for r in rows], total)

    def thumbnail(self, row_id: int, owner: int | None = None) -> bytes | None:
        """The stored thumbnail JPEG of ``owner``'s row, or ``None``."""
        with self.database.read() as db:
            found = db.execute(
                text(f"SELECT thumbnail FROM predictions WHERE id = :id AND {_owned(owner)}"),
                {"id": row_id, "owner": owner},
            ).scalar()
        return bytes(found) if found is not None else None

    def delete(self, row_id: int, owner: int | None = None) -> bool:
        """Remove one of ``owner``'s predictions; returns whether it existed."""
        with self.database.write() as db:
            gone = db.execute(
                text(f"DELETE FROM predictions WHERE id = :id AND {_owned(owner)}"), {"id": row_id, "owner": owner}
            )
            return gone.rowcount > 0

    def versions(self, owner: int | None = None) -> list[str]:
        """Model versions present in ``owner``'s history."""
        with self.database.read() as db:
            rows = db.execute(
                text(f"SELECT DISTINCT model_version FROM predictions WHERE {_owned(owner)} ORDER BY 1"),
                {"owner": owner},
            )
            return [r[0] for r in rows]

    def models(self, owner: int | None = None) -> list[dict]:
        """The (model name, version) pairs present in ``owner``'s history, for the page's filter."""
        with self.database.read() as db:
            rows = db.execute(
                text(f"SELECT DISTINCT model_name, model_version FROM predictions WHERE {_owned(owner)} ORDER BY 1, 2"),
                {"owner": owner},
            )
            return [{"name": name, "version": version} for name, version in rows]


def _owned(owner: int | None) -> str:
    """The condition selecting ``owner``'s rows (bound as ``:owner``; no owner: the rows without one)."""
    return "user_id IS NULL" if owner is None else "user_id = :owner"
