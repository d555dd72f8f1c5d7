"""The server's one SQLite file (``serve.history_path``): accounts, API tokens, login attempts and the history.

Every gunicorn worker opens the same file; WAL mode and a busy timeout let them write without "database is
locked" errors, and foreign keys make deleting an account delete what it owns.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.routing import IntegerConverter

SQLITE_MAX_ID = 2**63 - 1


class RowIdConverter(IntegerConverter):
    """A URL part naming a row: 1 to 2^63 - 1, SQLite's integer range (a larger number is a 404, never an
    overflow in the query)."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's name)
        super().__init__(map, min=1, max=SQLITE_MAX_ID)


class Database:
    """A thread-safe connection to the server's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free pages
        self._db.executescript("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for queries."""
        with self._lock:
            yield self._db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one transaction (committed on success, rolled back on error)."""
        with self._lock, self._db:
            yield self._db

    def forget_deleted(self) -> None:
        """Copy the WAL into the file and truncate it: with ``secure_delete`` nothing deleted remains on disk
        (the WAL otherwise keeps old copies of the pages until the next checkpoint)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def columns(self, table: str) -> set[str]:
        """The column names of ``table`` (for adding columns to files written by older versions)."""
        with self.read() as db:
            return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    def secret(self, key: str = "session_secret") -> str:
        """A random secret made once per file and shared by every worker (it signs session cookies)."""
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, secrets.token_hex(32)))
            return db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]
