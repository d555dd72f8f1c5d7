"""Past predictions made from the web page, in SQLite: thumbnail, label, confidence, model version, time, owner.

Each row belongs to one account (``user_id``); with ``serve.auth: none`` rows have no owner and form the one
shared history of a private, loopback-only server. Every query is scoped to one owner, so another account's row
is simply not found.

Config keys: ``serve.history_path``, ``serve.auth``.
"""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import Image

from serving.database import Database

_OWNER = "user_id INTEGER REFERENCES users(id) ON DELETE CASCADE"  # NULL: no accounts (serve.auth: none)
_IDEMPOTENCY = "idempotency_key TEXT"  # "<owner>:<the client's Idempotency-Key>"; NULL: none sent
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence REAL NOT NULL,
    model_version TEXT NOT NULL,
    top_k TEXT NOT NULL,
    thumbnail BLOB NOT NULL,
    {_OWNER}
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
"""


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
        with self.database.write() as db:
            db.executescript(_SCHEMA)
        for column in (_OWNER, _IDEMPOTENCY):  # columns files from older versions lack
            if column.split()[0] not in self.database.columns("predictions"):
                try:
                    with self.database.write() as db:
                        db.execute(f"ALTER TABLE predictions ADD COLUMN {column}")
                except sqlite3.OperationalError as exc:  # another worker added it first
                    if "duplicate column" not in str(exc):
                        raise
        with self.database.write() as db:
            db.execute("CREATE INDEX IF NOT EXISTS predictions_owner ON predictions (user_id, id)")
            db.execute("CREATE UNIQUE INDEX IF NOT EXISTS predictions_once ON predictions (idempotency_key)")

    def add(
        self,
        label: str,
        confidence: float,
        model_version: str,
        top_k: list[dict],
        thumbnail: bytes,
        owner: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Store one prediction for ``owner``; returns its id. A write repeated with the same
        ``idempotency_key`` (a client retrying after a lost answer) stores nothing and returns the first id."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        once = f"{owner or 0}:{idempotency_key}" if idempotency_key else None  # keys are per owner
        with self.database.write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO predictions (created_at, label, confidence, model_version, top_k, thumbnail, "
                "user_id, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, label, confidence, model_version, json.dumps(top_k), thumbnail, owner, once),
            )
            if cur.rowcount:
                return int(cur.lastrowid)
            return int(db.execute("SELECT id FROM predictions WHERE idempotency_key = ?", (once,)).fetchone()[0])

    def page(
        self,
        owner: int | None = None,
        page: int = 1,
        per_page: int = 20,
        date_from: str | None = None,
        date_to: str | None = None,
        model_version: str | None = None,
    ) -> Page:
        """``owner``'s rows newest first; ``date_from``/``date_to`` are ISO dates (inclusive), ``model_version`` exact."""
        where, args = ["user_id IS ?"], [owner]
        if date_from:
            where.append("created_at >= ?")
            args.append(date_from)
        if date_to and date_to < date.max.isoformat():  # the last day there is: no upper bound
            where.append("created_at < ?")  # the next day, from Python: SQLite's date() has no day after 9999-12-31
            args.append((date.fromisoformat(date_to) + timedelta(days=1)).isoformat())
        if model_version:
            where.append("model_version = ?")
            args.append(model_version)
        clause = f"WHERE {' AND '.join(where)}"
        with self.database.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM predictions {clause}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT id, created_at, label, confidence, model_version, top_k FROM predictions {clause} "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                [*args, per_page, (page - 1) * per_page],
            ).fetchall()
        keys = ("id", "created_at", "label", "confidence", "model_version", "top_k")
        return Page([{**dict(zip(keys, r, strict=True)), "top_k": json.loads(r[5])} for r in rows], total)

    def thumbnail(self, row_id: int, owner: int | None = None) -> bytes | None:
        """The stored thumbnail JPEG of ``owner``'s row, or ``None``."""
        with self.database.read() as db:
            row = db.execute(
                "SELECT thumbnail FROM predictions WHERE id = ? AND user_id IS ?", (row_id, owner)
            ).fetchone()
        return row[0] if row else None

    def delete(self, row_id: int, owner: int | None = None) -> bool:
        """Remove one of ``owner``'s predictions; returns whether it existed."""
        with self.database.write() as db:
            return db.execute("DELETE FROM predictions WHERE id = ? AND user_id IS ?", (row_id, owner)).rowcount > 0

    def versions(self, owner: int | None = None) -> list[str]:
        """Model versions present in ``owner``'s history."""
        with self.database.read() as db:
            rows = db.execute("SELECT DISTINCT model_version FROM predictions WHERE user_id IS ? ORDER BY 1", (owner,))
            return [r[0] for r in rows]
