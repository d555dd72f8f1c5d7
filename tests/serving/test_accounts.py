"""Accounts and the rules that make the server safe to expose, through Flask's test client on a real SQLite file
and, the same tests again, on a real PostgreSQL database (the replicas' shared one): sign-up rules, login
throttling, per-user history, API tokens, logout, account deletion, the same-origin check, the Host allow-list,
security headers and ``serve.auth`` modes."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from flows.settings import load_run_config
from serving.history import History
from serving.security import exposure_warning
from tests.support import PASSWORD, SAME_ORIGIN, noise_jpeg


@pytest.fixture(scope="module")
def predictor(make_predictor):
    return make_predictor()


@pytest.fixture(params=["sqlite", "postgresql"])
def make_app(request, predictor, app_for, tmp_path):
    """``make_app(*overrides)``: an app on this test's database (each call, another app on the same one)."""
    shared = []
    if request.param == "postgresql":
        shared = [f"serve.database_url={request.getfixturevalue('new_postgres_database')()}"]
    apps = []

    def make(*overrides: str):
        apps.append(app_for(tmp_path, predictor, *shared, *overrides))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["stj"].history.database.close()


def _rows(app, sql: str) -> list[tuple]:
    """What ``sql`` reads from ``app``'s database."""
    with app.extensions["stj"].history.database.read() as db:
        return [tuple(row) for row in db.execute(text(sql))]


def _from(app, address: str):
    """A client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _signup(client, email: str, password: str = PASSWORD):
    return client.post("/api/signup", json={"email": email, "password": password}, headers=SAME_ORIGIN)


def _predict(client, headers=SAME_ORIGIN, history: bool = True):
    query = "?history=1" if history else ""
    return client.post(f"/predict{query}", data={"image": (io.BytesIO(noise_jpeg()), "p.jpg")}, headers=headers)


def test_signup_validates_email_and_password(make_app) -> None:
    client = make_app().test_client()
    assert _signup(client, "not-an-email").get_json()["error"]["code"] == "invalid_email"
    # breached lists' favourites of 10+ characters (zxcvbn's list has 1 090 of them), in any case
    for weak in ("short", "aaaaaaaaaaaaaa", "password123", "Q1W2E3R4T5", "4815162342", "ann@example.org"):
        answer = _signup(client, "ann@example.org", weak)
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (422, "weak_password"), weak
    assert _signup(client, "Ann@Example.org").status_code == 201
    assert client.get("/api/me").get_json()["user"]["email"] == "Ann@example.org"
    taken = _signup(make_app().test_client(), "ann@example.org")
    assert (taken.status_code, taken.get_json()["error"]["code"]) == (409, "email_taken")
    assert _rows(make_app(), "SELECT password_hash FROM users")[0][0].startswith("$argon2id$")  # not the password


def test_each_user_sees_only_their_own_history(make_app) -> None:
    app = make_app()
    ann, bob = app.test_client(), app.test_client()
    _signup(ann, "ann@example.org")
    _signup(bob, "bob@example.org")
    row = _predict(ann).get_json()["history_id"]
    assert ann.get("/api/history").get_json()["total"] == 1
    assert bob.get("/api/history").get_json()["total"] == 0
    assert bob.get(f"/api/history/{row}/thumbnail").status_code == 404
    assert bob.delete(f"/api/history/{row}", headers=SAME_ORIGIN).status_code == 404
    assert ann.get(f"/api/history/{row}/thumbnail").mimetype == "image/jpeg"
    assert ann.delete(f"/api/history/{row}", headers=SAME_ORIGIN).status_code == 204


def test_anonymous_may_predict_but_keeps_no_history_when_auth_is_optional(make_app) -> None:
    client = make_app().test_client()
    assert _predict(client, history=False).status_code == 200
    refused = _predict(client)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (401, "login_required")
    assert client.get("/api/history").status_code == 401


def test_required_auth_guards_everything_but_sign_in_and_operations(make_app) -> None:
    client = make_app("serve.auth=required").test_client()
    assert _predict(client, history=False).status_code == 401
    assert client.get("/metadata").status_code == 401
    page = client.get("/history", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/history")
    for open_path in ("/health", "/ready", "/login", "/openapi.json", "/api/me"):
        assert client.get(open_path).status_code == 200, open_path
    _signup(client, "ann@example.org")
    assert _predict(client).status_code == 200


def test_login_is_throttled_per_email_and_address(make_app) -> None:
    app = make_app()
    _signup(app.test_client(), "ann@example.org")
    guesser = _from(app, "203.0.113.9")
    wrong = {"email": "ann@example.org", "password": "wrong password!"}
    for _ in range(5):
        assert guesser.post("/api/login", json=wrong, headers=SAME_ORIGIN).status_code == 401
    right = {"email": "ann@example.org", "password": PASSWORD}
    blocked = guesser.post("/api/login", json=right, headers=SAME_ORIGIN)
    assert blocked.status_code == 429 and "try again in" in blocked.get_json()["error"]["message"]
    ann = _from(app, "198.51.100.7")  # ann, elsewhere, is not locked out
    assert ann.post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 200
    for _ in range(3):  # her successes are not counted
        assert ann.post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 200


def test_strangers_failures_never_lock_the_owner_out_of_her_own_browser(make_app) -> None:
    """OWASP's device cookies: the browser Ann signed up in keeps working (and counts its own guesses) while
    strangers exhaust the account's limit; a browser she never used waits, as the limit requires."""
    app = make_app()
    ann = _from(app, "198.51.100.7")
    assert _signup(ann, "ann@example.org").status_code == 201
    wrong = {"email": "ann@example.org", "password": "wrong password!"}
    right = {"email": "ann@example.org", "password": PASSWORD}
    answers = [_from(app, f"203.0.113.{n // 5}").post("/api/login", json=wrong, headers=SAME_ORIGIN).status_code
               for n in range(25)]  # fmt: skip
    assert answers.count(401) == 20 and answers[-1] == 429  # 20 strangers' failures: the account's limit
    assert (
        _from(app, "192.0.2.1").post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 429
    )  # a new browser
    assert (
        ann.post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 200
    )  # her browser, same address or not
    ann.environ_base["REMOTE_ADDR"] = "192.0.2.99"
    assert ann.post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 200
    assert ann.delete("/api/account", json={"password": "not mine"}, headers=SAME_ORIGIN).status_code == 403
    for _ in range(5):  # her own browser's guesses are limited too: 5 per cookie
        assert ann.post("/api/login", json=wrong, headers=SAME_ORIGIN).status_code == 401
    assert ann.post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 429
    forged = _from(app, "198.51.100.7")
    forged.set_cookie("stj_device", "eyJlIjoiYW5uQGV4YW1wbGUub3JnIiwiZCI6IngifQ.forged")  # an unsigned claim
    assert forged.post("/api/login", json=right, headers=SAME_ORIGIN).status_code == 429


def test_the_signed_in_owner_can_delete_her_account_while_others_guess_at_it(make_app) -> None:
    app = make_app()
    ann = app.test_client()
    _signup(ann, "ann@example.org")
    wrong = {"email": "ann@example.org", "password": "wrong password!"}
    for n in range(25):
        _from(app, f"203.0.113.{n // 5}").post("/api/login", json=wrong, headers=SAME_ORIGIN)
    assert ann.delete("/api/account", json={"password": PASSWORD}, headers=SAME_ORIGIN).status_code == 204


def test_parallel_guesses_cannot_slip_under_the_limit(make_app) -> None:
    from concurrent.futures import ThreadPoolExecutor

    app = make_app()
    _signup(app.test_client(), "ann@example.org")

    def guess(_: int) -> int:
        client = _from(app, "203.0.113.9")
        return client.post("/api/login", json={"email": "ann@example.org", "password": "x" * 12}).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(guess, range(16)))
    assert answers.count(401) == 5 and answers.count(429) == 11


def test_a_token_may_not_manage_tokens_sign_out_or_delete_the_account_but_may_revoke_itself(make_app) -> None:
    app = make_app()
    client = app.test_client()
    _signup(client, "ann@example.org")
    made = [client.post("/api/tokens", json={"name": name}, headers=SAME_ORIGIN).get_json() for name in ("a", "b")]
    bearer = {"Authorization": f"Bearer {made[0]['token']}"}
    program = app.test_client()
    for answer in (
        program.post("/api/tokens", json={"name": "more"}, headers=bearer),
        program.get("/api/tokens", headers=bearer),
        program.delete(f"/api/tokens/{made[1]['id']}", headers=bearer),  # another token of hers
        program.post("/api/logout", headers=bearer),
        program.delete("/api/account", json={"password": PASSWORD}, headers=bearer),
    ):
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (403, "session_required")
    assert client.get("/api/me").get_json()["user"]["email"] == "ann@example.org"  # her browser: still signed in
    assert program.delete(f"/api/tokens/{made[0]['id']}", headers=bearer).status_code == 204  # itself
    assert [t["name"] for t in client.get("/api/tokens").get_json()["tokens"]] == ["b"]


def test_malformed_bodies_are_json_4xx(make_app) -> None:
    client = make_app().test_client()
    nested = "[" * 100_000 + "]" * 100_000
    for body in (nested, "not json", '"a string"'):
        answer = client.post("/api/login", data=body, content_type="application/json", headers=SAME_ORIGIN)
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (415, "json_required")
    assert client.post("/api/signup", json={"email": 5, "password": None}, headers=SAME_ORIGIN).status_code == 422
    closed = make_app("serve.signup=false").test_client()
    assert _signup(closed, "ann@example.org").get_json()["error"]["code"] == "signup_closed"


def test_logout_ends_the_session_even_for_a_copied_cookie(make_app) -> None:
    app = make_app()
    client = app.test_client()
    _signup(client, "ann@example.org")
    cookie = client.get_cookie("stj_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert client.post("/api/logout", headers=SAME_ORIGIN).status_code == 204
    thief = app.test_client()
    thief.set_cookie("stj_session", cookie.value)
    assert thief.get("/api/me").get_json()["user"] is None
    assert thief.get("/api/history").status_code == 401


def test_api_tokens_authenticate_programs_until_revoked(make_app) -> None:
    app = make_app("serve.auth=required")
    client = app.test_client()
    _signup(client, "ann@example.org")
    made = client.post("/api/tokens", json={"name": "cron"}, headers=SAME_ORIGIN).get_json()
    bearer = {"Authorization": f"Bearer {made['token']}"}
    program = app.test_client()  # no cookie, no Origin: a script
    assert _predict(program, headers=bearer).status_code == 200
    assert program.get("/api/history", headers=bearer).get_json()["total"] == 1
    listed = client.get("/api/tokens").get_json()["tokens"]
    assert [t["name"] for t in listed] == ["cron"] and "token" not in listed[0] and listed[0]["last_used_at"]
    assert _rows(app, "SELECT token_hash FROM api_tokens")[0][0] != made["token"]
    assert client.delete(f"/api/tokens/{made['id']}", headers=SAME_ORIGIN).status_code == 204
    revoked = program.get("/api/history", headers=bearer)
    assert (revoked.status_code, revoked.get_json()["error"]["code"]) == (401, "invalid_token")


def test_deleting_the_account_deletes_its_history(make_app) -> None:
    app = make_app()
    client = app.test_client()
    _signup(client, "ann@example.org")
    _predict(client)
    wrong = client.delete("/api/account", json={"password": "not my password"}, headers=SAME_ORIGIN)
    assert wrong.status_code == 403
    assert client.delete("/api/account", json={"password": PASSWORD}, headers=SAME_ORIGIN).status_code == 204
    assert _rows(app, "SELECT COUNT(*) FROM predictions") == _rows(app, "SELECT COUNT(*) FROM users") == [(0,)]
    login = app.test_client().post("/api/login", json={"email": "ann@example.org", "password": PASSWORD})
    assert login.status_code == 401


def test_cross_origin_state_changes_are_refused(make_app) -> None:
    app = make_app("serve.auth=none")
    client = app.test_client()
    row = _predict(client, headers=SAME_ORIGIN).get_json()["history_id"]
    foreign = (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:8001"},  # another port is another origin
        {"Origin": "https://localhost"},  # so is another scheme
        {"Referer": "http://evil.example/x"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example", "Authorization": "Bearer stj_x"},  # a token does not excuse a cookie
    )
    for headers in foreign:
        browser = app.test_client()
        browser.set_cookie("stj_session", "anything")
        refused = browser.delete(f"/api/history/{row}", headers=headers)
        assert (refused.status_code, refused.get_json()["error"]["code"]) == (403, "cross_origin"), headers
        assert _predict(browser, headers=headers).status_code == 403
    cookie_no_origin = app.test_client()
    cookie_no_origin.set_cookie("stj_session", "anything")
    assert cookie_no_origin.delete(f"/api/history/{row}").status_code == 403
    assert client.get("/api/history").get_json()["total"] == 1
    assert app.test_client().delete(f"/api/history/{row}").status_code == 204  # curl: no cookie, no Origin


def test_security_headers_and_host_allow_list(make_app) -> None:
    client = make_app().test_client()
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    sneaky = ("evil.example@127.0.0.1", "127.0.0.1:evil", "127.0.0.1#evil", "localhost:80:80", "localhost/x")
    for host in ("evil.example", "localhost.evil.example", "", "[::1", *sneaky):
        foreign = client.get("/health", headers={"Host": host})
        assert (foreign.status_code, foreign.get_json()["error"]["code"]) == (400, "bad_host"), host
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host
    allowed = make_app("serve.allowed_hosts=[.example.com]").test_client()
    assert allowed.get("/health", headers={"Host": "stj.example.com"}).status_code == 200
    assert allowed.get("/health", headers={"Host": "example.com:443"}).status_code == 200
    assert allowed.get("/health", headers={"Host": "localhost"}).status_code == 400
    behind = make_app("serve.public_url=https://stj.example.com").test_client()
    assert behind.get("/health", headers={"Host": "stj.example.com"}).status_code == 200
    rewritten = behind.post("/api/logout", headers={"Host": "localhost", "Origin": "https://stj.example.com"})
    assert rewritten.status_code == 204  # a proxy that rewrites Host: the public origin is still ours


def test_no_accounts_mode_shares_one_history_and_warns_when_exposed(make_app) -> None:
    client = make_app("serve.auth=none").test_client()
    assert _signup(client, "ann@example.org").status_code == 404
    assert _predict(client).status_code == 200 and client.get("/api/history").get_json()["total"] == 1
    config = load_run_config("configs/demo.yaml", ["serve.auth=none", "serve.host=0.0.0.0"])
    assert "serve.auth" in exposure_warning(config.serve)
    for safe in (["serve.auth=none"], ["serve.host=0.0.0.0"]):
        assert exposure_warning(load_run_config("configs/demo.yaml", safe).serve) is None


def test_a_history_file_from_before_accounts_is_upgraded(tmp_path) -> None:
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, label TEXT "
        "NOT NULL, confidence REAL NOT NULL, model_version TEXT NOT NULL, top_k TEXT NOT NULL, thumbnail BLOB NOT NULL)"
    )
    old.execute("INSERT INTO predictions VALUES (1, '2026-01-01T00:00:00+00:00', 'saree', 0.9, '1', '[]', x'00')")
    old.commit()
    old.close()
    history = History(path)
    assert history.page().total == 1  # the rows of a server without accounts
    assert history.page(owner=7).total == 0


def test_addresses_differing_only_in_case_or_unicode_form_are_one_account(make_app) -> None:
    app = make_app()
    assert _signup(app.test_client(), "\u00c9b\u00e8ne@example.com").status_code == 201  # Ébène
    for twin in ("\u00e9b\u00e8ne@example.com", "\u00c9B\u00c8NE@example.com", "E\u0301be\u0300ne@example.com"):
        assert _signup(app.test_client(), twin).status_code == 409, twin  # lower case, upper case, decomposed
    assert _signup(app.test_client(), "ann@example.org").status_code == 201
    assert _signup(app.test_client(), "\uff41\uff4e\uff4e@example.org").status_code == 409  # fullwidth "ann"
    client = app.test_client()
    for spelling in ("\u00c9b\u00e8ne@example.com", "\u00e9b\u00e8ne@example.com", "E\u0301BE\u0300NE@example.com"):
        login = client.post("/api/login", json={"email": spelling, "password": PASSWORD}, headers=SAME_ORIGIN)
        assert login.status_code == 200 and login.get_json()["user"]["email"] == "\u00c9b\u00e8ne@example.com"
    assert client.delete("/api/account", json={"password": PASSWORD}, headers=SAME_ORIGIN).status_code == 204


def test_accounts_that_collide_once_normalised_stay_reachable_after_the_upgrade(tmp_path, caplog) -> None:
    from argon2 import PasswordHasher

    from serving.accounts import Accounts
    from serving.database import Database
    from serving.errors import ApiError

    path = tmp_path / "history.db"
    old = sqlite3.connect(path)  # the users table as the first release made it
    old.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE COLLATE NOCASE, "
        "password_hash TEXT NOT NULL, session_nonce TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    hashed = PasswordHasher().hash(PASSWORD)
    for address in ("\u00f1o\u00f1o@example.org", "\u00d1o\u00f1o@example.org", "ann@example.org"):  # ñoño, Ñoño
        old.execute("INSERT INTO users (email, password_hash, session_nonce, created_at) VALUES (?, ?, 'n', 't')",
                    (address, hashed))  # fmt: skip
    old.commit()
    old.close()
    with caplog.at_level("WARNING", logger="serving.accounts"):
        accounts = Accounts(Database(path))
    assert "accounts 1 and 2 differ only in case" in caplog.text
    exact = {1: "\u00f1o\u00f1o@example.org", 2: "\u00d1o\u00f1o@example.org", 3: "ANN@example.org"}
    for user_id, address in exact.items():
        assert accounts.authenticate(address, PASSWORD).id == user_id, address
    assert accounts.authenticate("\u00d1O\u00d1O@example.org", PASSWORD).id == 1  # any other spelling: the first
    with pytest.raises(ApiError, match="already exists"):
        accounts.create("\u00d1O\u00d1O@example.org", PASSWORD)


def test_ids_beyond_sqlites_range_are_a_404_not_a_crash(make_app) -> None:
    client = make_app().test_client()
    _signup(client, "ann@example.org")
    routes = (("DELETE", "/api/history/{}"), ("GET", "/api/history/{}/thumbnail"), ("DELETE", "/api/tokens/{}"))
    for method, path in routes:
        for row_id in (2**63 - 1, 2**63, 10**30):
            resp = client.open(path.format(row_id), method=method, headers=SAME_ORIGIN)
            assert resp.status_code == 404 and resp.is_json, (path, row_id, resp.status_code)


def _on_disk(app) -> bytes:
    """Every byte of ``app``'s database on disk: SQLite's file and its WAL; on PostgreSQL, the files of the
    account tables and their indexes after a checkpoint (PostgreSQL has no secure delete: the history's freed
    bytes and the WAL are left to it, and the docs say so)."""
    database = app.extensions["stj"].history.database
    if database.path is not None:
        return b"".join(p.read_bytes() for p in database.path.parent.glob(database.path.name + "*"))
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.exec_driver_sql("CHECKPOINT")
        folder = Path(db.exec_driver_sql("SHOW data_directory").scalar_one())
        files = db.exec_driver_sql(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND (c.relname IN ('users', 'api_tokens', 'attempts') "
            "OR c.oid IN (SELECT indexrelid FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relname IN ('users', 'api_tokens', 'attempts')))"
        ).scalars()
        return b"".join(p.read_bytes() for name in files for p in folder.glob(name + "*"))


def test_a_deleted_account_leaves_no_email_or_photo_on_disk(make_app) -> None:
    app = make_app()
    client = app.test_client()
    _signup(client, "wiped@example.org")
    row = _predict(client).get_json()["history_id"]
    thumbnail = client.get(f"/api/history/{row}/thumbnail").data
    for _ in range(2):  # failed logins are counted by a key derived from the email
        app.test_client().post("/api/login", json={"email": "wiped@example.org", "password": "wrong password!"})
    on_disk = _on_disk(app)
    assert b"wiped@example.org" in on_disk  # (the check can see it)
    sqlite = app.extensions["stj"].history.database.path is not None
    assert thumbnail[-200:] in on_disk or not sqlite
    assert client.delete("/api/account", json={"password": PASSWORD}, headers=SAME_ORIGIN).status_code == 204
    on_disk = _on_disk(app)
    assert b"wiped@example.org" not in on_disk and thumbnail[-200:] not in on_disk
    assert _rows(app, "SELECT COUNT(*) FROM predictions") == [(0,)]
    if not sqlite:  # the history's dead rows are gone at once, not whenever autovacuum comes by
        assert _rows(app, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'predictions'") == [(0,)]


def test_a_history_write_retried_with_its_idempotency_key_is_stored_once(make_app) -> None:
    app = make_app()
    ann, bob = app.test_client(), app.test_client()
    _signup(ann, "ann@example.org")
    _signup(bob, "bob@example.org")
    retry = {**SAME_ORIGIN, "Idempotency-Key": "9b2f6d0e-upload-1"}
    first, again = (_predict(ann, headers=retry).get_json()["history_id"] for _ in range(2))
    assert first == again and ann.get("/api/history").get_json()["total"] == 1
    assert _predict(bob, headers=retry).get_json()["history_id"] != first  # keys are per account
    assert _predict(ann).get_json()["history_id"] not in (first, None)  # no key: a new row each time
    for bad in ("x" * 256, "caf\u00e9", ""):
        resp = _predict(ann, headers={**SAME_ORIGIN, "Idempotency-Key": bad})
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (422, "invalid_idempotency_key"), bad
