"""Past predictions made from the web page, in SQLite: thumbnail, label, confidence, model version, time.

Config keys: ``serve.history_path``.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence REAL NOT NULL,
    model_version TEXT NOT NULL,
    top_k TEXT NOT NULL,
    thumbnail BLOB NOT NULL
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
    """A thread-safe SQLite store of predictions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def add(self, label: str, confidence: float, model_version: str, top_k: list[dict], thumbnail: bytes) -> int:
        """Store one prediction; returns its id."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO predictions (created_at, label, confidence, model_version, top_k, thumbnail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (now, label, confidence, model_version, json.dumps(top_k), thumbnail),
            )
            return int(cur.lastrowid)

    def page(
        self,
        page: int = 1,
        per_page: int = 20,
        date_from: str | None = None,
        date_to: str | None = None,
        model_version: str | None = None,
    ) -> Page:
        """Rows newest first; ``date_from``/``date_to`` are ISO dates (inclusive), ``model_version`` exact."""
        where, args = [], []
        if date_from:
            where.append("created_at >= ?")
            args.append(date_from)
        if date_to:
            where.append("created_at < date(?, '+1 day')")
            args.append(date_to)
        if model_version:
            where.append("model_version = ?")
            args.append(model_version)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM predictions {clause}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT id, created_at, label, confidence, model_version, top_k FROM predictions {clause} "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                [*args, per_page, (page - 1) * per_page],
            ).fetchall()
        keys = ("id", "created_at", "label", "confidence", "model_version", "top_k")
        return Page([{**dict(zip(keys, r, strict=True)), "top_k": json.loads(r[5])} for r in rows], total)

    def thumbnail(self, row_id: int) -> bytes | None:
        """The stored thumbnail JPEG, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT thumbnail FROM predictions WHERE id = ?", (row_id,)).fetchone()
        return row[0] if row else None

    def delete(self, row_id: int) -> bool:
        """Remove one prediction; returns whether it existed."""
        with self._lock, self._db:
            return self._db.execute("DELETE FROM predictions WHERE id = ?", (row_id,)).rowcount > 0

    def versions(self) -> list[str]:
        """Model versions present in the history."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT model_version FROM predictions ORDER BY 1")]
