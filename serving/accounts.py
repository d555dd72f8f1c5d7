"""Accounts in the server's database: users (email + argon2 hash), API tokens (SHA-256, shown once), login throttling.

A user's session id carries a nonce that changes when they log out, so a copied cookie stops working at
logout even though Flask sessions live in the cookie. API tokens are long random
strings, so a fast hash is enough to store them; passwords get argon2id (``argon2-cffi``'s defaults).
Attempts (logins, sign-ups, password confirmations) are counted in the database, so limits hold across
gunicorn workers.

Config keys: ``serve.database_url`` (the database), ``serve.signup``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from serving.database import MAX_ROW_ID, Database
from serving.errors import ApiError

log = logging.getLogger(__name__)

# users_by_email_key, not users_email_key: PostgreSQL gives that name to the index of "email UNIQUE"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id {id},
    email TEXT NOT NULL UNIQUE{nocase},
    password_hash TEXT NOT NULL,
    session_nonce TEXT NOT NULL,
    created_at TEXT NOT NULL,
    email_key TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_email_key ON users (email_key);
CREATE TABLE IF NOT EXISTS api_tokens (
    id {id},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS attempts (id {id}, key TEXT NOT NULL, at {real} NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key, at);
CREATE TABLE IF NOT EXISTS roles (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    granted_at TEXT NOT NULL
)
"""
_OWN_TABLES = ("users", "api_tokens", "attempts", "roles")  # what deleting an account touches: these, and the history
MIN_PASSWORD, MAX_PASSWORD = 10, 128
TOKEN_PREFIX = "stj_"
ADMIN = "admin"  # the role that may review corrections (/review); `stj admin grant EMAIL` gives it
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password anyone has")  # checked for unknown emails: same time as a real one


@dataclass(frozen=True)
class User:
    """A signed-in user as Flask-Login sees it; ``get_id`` includes the session nonce."""

    id: int
    email: str
    nonce: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return f"{self.id}.{self.nonce}"

    def public(self) -> dict:
        """What the API shows of a user."""
        return {"id": self.id, "email": self.email}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def normalize_email(email: object) -> str:
    """The normalised address, or a 422 ``invalid_email`` saying what is wrong with it."""
    if not isinstance(email, str) or not email.strip():
        raise ApiError(422, "invalid_email", "an email address is required")
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ApiError(422, "invalid_email", str(exc)) from None


def email_key(email: str) -> str:
    """The form of an address accounts are matched by: NFKC, case-folded (Unicode's NFKC_Casefold, near
    enough), so ``Ébène@…``, ``ébène@…`` and fullwidth look-alikes are one account."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email.strip()).casefold())


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30 000 passwords found most often in breaches, as zxcvbn ships them (lower case): NIST SP 800-63B
    asks a verifier to refuse a password on such a list. Loaded once per process (~2 MB)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: object, email: str) -> str:
    """``password`` if it is acceptable (NIST SP 800-63B: 10 to 128 characters, not the account's address, not
    one of the :func:`common_passwords`, not a few characters repeated), else a 422 ``weak_password`` naming
    the rule it breaks."""
    if not isinstance(password, str):
        raise ApiError(422, "weak_password", "a password is required")
    lowered = password.lower()
    if len(password) < MIN_PASSWORD:
        raise ApiError(422, "weak_password", f"use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ApiError(422, "weak_password", f"use at most {MAX_PASSWORD} characters")
    if lowered in (email.lower(), email.split("@")[0].lower()):
        raise ApiError(422, "weak_password", "the password must not be your email address")
    if len(set(password)) < 5 or lowered in common_passwords():
        raise ApiError(422, "weak_password", "that password is too easy to guess: it is one of the most common")
    return password


def token_hash(token: str) -> str:
    """How an API token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users, their API tokens and failed-login counts in ``database``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._attempt_secret = database.secret("attempt_secret").encode()
        with database.legacy_sqlite() as old:
            if old is not None:
                _upgrade_sqlite_file(old)
        database.schema(_SCHEMA)
        with database.write() as db:
            db.execute(text("DELETE FROM attempts WHERE key LIKE '%:%'"))  # kept in clear by older versions

    def create(self, email: object, password: object) -> User:
        """A new user (email validated, password checked against the policy); 409 if the email is taken."""
        address = normalize_email(email)
        hashed = _HASHER.hash(check_password_policy(password, address))
        nonce = secrets.token_hex(8)
        row = {"email": address, "key": email_key(address), "hash": hashed, "nonce": nonce, "at": _now()}
        try:
            with self.database.write() as db:
                new = db.execute(
                    text(
                        "INSERT INTO users (email, email_key, password_hash, session_nonce, created_at) "
                        "VALUES (:email, :key, :hash, :nonce, :at) RETURNING id"
                    ),
                    row,
                ).scalar_one()
        except IntegrityError:  # the email is unique (by its key)
            raise ApiError(409, "email_taken", "an account with that email already exists; log in instead") from None
        return User(int(new), address, nonce)

    def authenticate(self, email: object, password: object) -> User | None:
        """The user whose email and password these are, or ``None`` (after the same work either way)."""
        address = email.strip() if isinstance(email, str) else ""
        columns = "SELECT id, email, password_hash, session_nonce FROM users"
        with self.database.read() as db:  # both indexed: the address (ASCII case aside), then the key
            row = db.execute(text(f"{columns} WHERE email = :email"), {"email": address}).first()
            if row is None or row[1] != address:  # the exact address first: accounts that collided before keys
                row = db.execute(text(f"{columns} WHERE email_key = :key"), {"key": email_key(address)}).first()
        try:
            _HASHER.verify(row[2] if row else _DUMMY_HASH, password if isinstance(password, str) else "")
        except (VerificationError, InvalidHashError):
            return None
        return User(row[0], row[1], row[3]) if row else None

    def get(self, session_id: str) -> User | None:
        """The user a session id (``<id>.<nonce>``) names, if that session is still valid."""
        user_id, _, nonce = session_id.partition(".")
        if not user_id.isdigit() or int(user_id) > MAX_ROW_ID:
            return None
        with self.database.read() as db:
            row = db.execute(
                text("SELECT id, email, session_nonce FROM users WHERE id = :id"), {"id": int(user_id)}
            ).first()
        return User(*row) if row and secrets.compare_digest(row[2], nonce) else None

    def end_sessions(self, user_id: int) -> None:
        """Invalidate every session cookie of ``user_id`` (logout)."""
        with self.database.write() as db:
            db.execute(
                text("UPDATE users SET session_nonce = :nonce WHERE id = :id"),
                {"nonce": secrets.token_hex(8), "id": user_id},
            )

    def delete(self, user_id: int) -> None:
        """Remove the user, their tokens and their history (foreign keys cascade), from the disk too."""
        with self.database.write() as db:
            db.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
        self.database.forget_deleted(_OWN_TABLES, ("predictions",))

    def grant(self, email: str, role: str = ADMIN) -> User:
        """Give the account at ``email`` the role (``stj admin grant``); the user.

        Raises:
            ApiError: 422 for an address that is not one, 404 when no account has it.
        """
        with self.database.write() as db:
            key = email_key(normalize_email(email))
            row = db.execute(
                text("SELECT id, email, session_nonce FROM users WHERE email_key = :key"), {"key": key}
            ).first()
            if row is None:
                raise ApiError(404, "no_such_account", f"no account has the address {email!r}")
            db.execute(text("DELETE FROM roles WHERE user_id = :id"), {"id": row[0]})
            db.execute(
                text("INSERT INTO roles (user_id, role, granted_at) VALUES (:id, :role, :at)"),
                {"id": row[0], "role": role, "at": _now()},
            )
        return User(*row)

    def has_role(self, user_id: int, role: str = ADMIN) -> bool:
        """Whether the user holds ``role``."""
        with self.database.read() as db:
            found = db.execute(
                text("SELECT 1 FROM roles WHERE user_id = :id AND role = :role"), {"id": user_id, "role": role}
            ).first()
        return found is not None

    def create_token(self, user_id: int, name: object) -> dict:
        """A new API token for ``user_id``; the returned ``token`` is the only time it is shown."""
        label = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(label) <= 60:
            raise ApiError(422, "invalid_name", "give the token a name of 1 to 60 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = _now()
        with self.database.write() as db:
            new = db.execute(
                text(
                    "INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
                    "VALUES (:user, :name, :hash, :at) RETURNING id"
                ),
                {"user": user_id, "name": label, "hash": token_hash(token), "at": created},
            ).scalar_one()
        return {"id": int(new), "name": label, "created_at": created, "last_used_at": None, "token": token}

    def tokens(self, user_id: int) -> list[dict]:
        """``user_id``'s tokens, without their secrets."""
        with self.database.read() as db:
            rows = db.execute(
                text("SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = :user ORDER BY id"),
                {"user": user_id},
            ).all()
        return [dict(zip(("id", "name", "created_at", "last_used_at"), row, strict=True)) for row in rows]

    def revoke_token(self, user_id: int, token_id: int) -> bool:
        """Delete one of ``user_id``'s tokens; returns whether it existed."""
        with self.database.write() as db:
            gone = db.execute(
                text("DELETE FROM api_tokens WHERE id = :id AND user_id = :user"), {"id": token_id, "user": user_id}
            )
            return gone.rowcount > 0

    def user_for_token(self, token: str) -> tuple[User, int] | None:
        """The owner of an API token and the token's id (its last use is recorded), or ``None``."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.database.write() as db:
            row = db.execute(
                text(
                    "SELECT u.id, u.email, u.session_nonce, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id "
                    "WHERE t.token_hash = :hash"
                ),
                {"hash": token_hash(token)},
            ).first()
            if row:  # at most once a minute: every API call would otherwise write
                db.execute(
                    text(
                        "UPDATE api_tokens SET last_used_at = :now WHERE id = :id AND "
                        "(last_used_at IS NULL OR last_used_at < :minute_ago)"
                    ),
                    {
                        "now": _now(),
                        "id": row[3],
                        "minute_ago": datetime.fromtimestamp(time.time() - 60, UTC).isoformat(timespec="seconds"),
                    },
                )
        return (User(*row[:3]), row[3]) if row else None

    def attempt(self, limits: dict[str, int], window_s: float) -> tuple[float, int | None]:
        """Count one attempt against each key of ``limits`` (key -> attempts allowed per ``window_s``).

        Returns ``(seconds to wait, None)`` when a key is over its limit (nothing counted), else ``(0, id)``:
        the attempt is counted before the caller checks the password, in the same transaction as the check,
        and one such transaction runs at a time (SQLite's write lock; on PostgreSQL a lock on the table), so
        parallel requests, to any worker or replica, cannot all slip under the limit. :meth:`forgive` takes a
        successful one back.
        """
        limits = {self._attempt_key(key): limit for key, limit in limits.items()}
        now = time.time()
        since = now - window_s
        with self.database.write() as db:
            if self.database.dialect == "postgresql":
                db.execute(text("LOCK TABLE attempts IN SHARE ROW EXCLUSIVE MODE"))
            db.execute(text("DELETE FROM attempts WHERE at < :day_ago"), {"day_ago": now - 86400})
            wait = 0.0
            for key, limit in limits.items():
                count, oldest = db.execute(
                    text("SELECT COUNT(*), MIN(at) FROM attempts WHERE key = :key AND at > :since"),
                    {"key": key, "since": since},
                ).one()
                if count >= limit:
                    wait = max(wait, oldest - since)
            if wait > 0:
                return wait, None
            last = None
            for key in limits:
                last = db.execute(
                    text("INSERT INTO attempts (key, at) VALUES (:key, :at) RETURNING id"), {"key": key, "at": now}
                ).scalar_one()
            return 0.0, int(last) if last is not None else None

    def _attempt_key(self, key: str) -> str:
        """How an attempt's key (an email, an address) is stored: an HMAC under this server's secret, which
        a dictionary of emails cannot reverse as it could a plain hash."""
        return hmac.new(self._attempt_secret, key.encode(), hashlib.sha256).hexdigest()

    def forgive(self, limits: dict[str, int], attempt_id: int | None) -> None:
        """Take back the attempt counted by :meth:`attempt` (it succeeded)."""
        if attempt_id is None:
            return
        with self.database.write() as db:  # the rows inserted together end at attempt_id
            db.execute(
                text("DELETE FROM attempts WHERE id > :after AND id <= :last"),
                {"after": attempt_id - len(limits), "last": attempt_id},
            )


def _upgrade_sqlite_file(db) -> None:
    """Upgrade the account tables of a SQLite file from an older version, inside its ``BEGIN IMMEDIATE``.

    The attempts table gains an id (its rows, counts of the last day's failed logins, are dropped). A users
    table from before ``email_key`` gets its keys: accounts whose addresses collide once normalised keep
    signing in by their exact address (the first one by its key too), and are logged."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "attempts" in tables and "id" not in {row[1] for row in db.execute("PRAGMA table_info(attempts)")}:
        db.execute("DROP TABLE attempts")
    db.execute("DROP INDEX IF EXISTS users_email_key")  # email_key's index, by its earlier name
    if "users" not in tables or "email_key" in {row[1] for row in db.execute("PRAGMA table_info(users)")}:
        return
    db.execute("ALTER TABLE users ADD COLUMN email_key TEXT")
    owners: dict[str, int] = {}
    for user_id, address in db.execute("SELECT id, email FROM users ORDER BY id").fetchall():
        key = email_key(address)
        if key in owners:
            log.warning("accounts %d and %d differ only in case or Unicode form: each signs in with its "
                        "exact address", owners[key], user_id)  # fmt: skip
            continue
        owners[key] = user_id
        db.execute("UPDATE users SET email_key = ? WHERE id = ?", (key, user_id))
