"""Accounts over HTTP (Flask-Login): sign up, log in, log out, delete the account, API tokens; who is asking.

``serve.auth`` decides what needs an account: ``none`` (no accounts; one shared history, for a private
server), ``optional`` (anyone may predict; a history needs an account), ``required`` (everything but the
sign-in pages and operations endpoints needs an account). Browsers sign in with a session cookie; programs
send ``Authorization: Bearer stj_…`` with a token made on the account page.

Config keys: ``serve.auth``, ``serve.signup``, ``serve.proxy`` (whose address a failed login is counted
against).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, request, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer

from serving.accounts import Accounts, User, email_key
from serving.errors import ApiError
from serving.state import served

bp = Blueprint("auth", __name__)
WINDOW_S = 900  # attempts are counted over 15 minutes
# a guess at one account from one address; at one account from anywhere; anything from one address (which a
# proxy or an office network may share: a high bar). Sign-ups: per address.
LOGIN_LIMITS = {"email+addr": 5, "email": 20, "addr": 100}
SIGNUP_LIMIT = 10
# A browser that signed in to an account before holds a device cookie for it (OWASP's "device cookies"
# against account lockout; ASVS 4.0.3 V2.2.1): its guesses count against that cookie alone, so strangers'
# failures never lock the owner out of their own browser; at most 20 untrusted failures per account per
# 15 minutes (80 an hour: ASVS asks for no more than 100).
DEVICE_COOKIE, DEVICE_LIMIT, DEVICE_MAX_AGE_S = "stj_device", 5, 365 * 86400
CONFIRM_LIMIT = 5  # wrong passwords when a signed-in person confirms deleting the account
# reachable without an account when serve.auth is required
PUBLIC_ENDPOINTS = {"static", "ops.health", "ops.ready", "ops.prometheus", "ops.openapi", "pages.docs",
                    "pages.login_page", "pages.favicon", "auth.signup", "auth.login", "auth.me",
                    "offline.manifest", "offline.service_worker", "offline.offline_page"}  # fmt: skip


def accounts() -> Accounts:
    """The accounts store of the app handling the current request."""
    found = served().accounts
    if found is None:
        raise ApiError(404, "accounts_disabled", "this server has no accounts (serve.auth: none)")
    return found


def install_login(app: Flask, store: Accounts | None, mode: str) -> None:
    """Flask-Login on ``app``: sessions and bearer tokens from ``store`` (``None``: no accounts, nobody signs
    in); ``serve.auth: required`` enforced."""
    manager = LoginManager(app)
    manager.user_loader(store.get if store is not None else lambda _session_id: None)
    if store is None:
        return

    @manager.request_loader
    def _bearer(req) -> User | None:
        auth = req.authorization
        if auth is None or auth.type != "bearer" or not auth.token:
            return None
        found = store.user_for_token(auth.token)
        if found is None:
            raise ApiError(401, "invalid_token", "that API token is not valid (revoked, or never issued)")
        g.token_id = found[1]  # which token this is: it may revoke itself
        return found[0]

    @manager.unauthorized_handler
    def _unauthorized():
        return login_required()

    if mode == "required":

        @app.before_request
        def _require_account():
            if request.endpoint not in PUBLIC_ENDPOINTS and not current_user.is_authenticated:
                return login_required()
            return None


def login_required():
    """What an anonymous request gets where an account is needed: a page request is sent to sign in, anything
    else a JSON 401."""
    wants_page = request.method == "GET" and request.accept_mimetypes.best == "text/html"
    if wants_page:
        return redirect(url_for("pages.login_page", next=request.full_path.rstrip("?")))
    raise ApiError(401, "login_required", "log in first, or send an API token (Authorization: Bearer stj_…)")


def owner() -> int | None:
    """Whose history a request reads and writes: the signed-in user, or ``None`` when there are no accounts.
    With accounts, an anonymous request gets 401."""
    if served().accounts is None:
        return None
    if not current_user.is_authenticated:
        raise ApiError(401, "login_required", "log in to keep a history, or send an API token")
    return current_user.id


def admin() -> int:
    """The signed-in admin's id: 401 for an anonymous request, 403 for an account without the admin role or a
    server without accounts."""
    store = served().accounts
    if store is None:
        raise ApiError(403, "accounts_off", "reviewing needs accounts (serve.auth), so that only admins review")
    user = owner()
    if not store.has_role(user):
        raise ApiError(403, "admin_only", "only an admin may review (stj admin grant EMAIL makes one)")
    return user


def json_body() -> dict:
    """The request's JSON object; 415 when the body is not one."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly nested JSON
        body = None
    if not isinstance(body, dict):
        raise ApiError(415, "json_required", "send a JSON object (Content-Type: application/json)")
    return body


def _client_address() -> str:
    # behind nginx gunicorn listens on a unix socket (no address): only nginx can have set X-Forwarded-For
    if request.remote_addr:
        return request.remote_addr
    return request.headers.get("X-Forwarded-For", "").split(",")[-1].strip() or "unknown"


def _bearer_sent() -> bool:
    return request.authorization is not None and request.authorization.type == "bearer"


def _session_only() -> None:
    """Minting, listing and revoking others' tokens, signing out and deleting the account need the signed-in
    person, not a (possibly leaked) token."""
    if _bearer_sent():
        raise ApiError(403, "session_required", "sign in on the page for this; API tokens cannot do it")


def _device_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="stj-device")


def _trusted_device(key: str) -> str | None:
    """The id of this browser's device cookie, if this server issued it for the account ``key``."""
    raw = request.cookies.get(DEVICE_COOKIE)
    try:
        claim = _device_signer().loads(raw) if raw else None
    except BadSignature:
        return None
    return claim["d"] if isinstance(claim, dict) and claim.get("e") == key else None


def _remember_device(response: Response, key: str) -> Response:
    """Give the browser that just signed in to the account ``key`` a device cookie for it."""
    claim = _device_signer().dumps({"e": key, "d": secrets.token_urlsafe(12)})
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    response.set_cookie(DEVICE_COOKIE, claim, max_age=DEVICE_MAX_AGE_S, httponly=True, samesite="Lax", secure=secure)
    return response


def _login_limits(email: str) -> dict[str, int]:
    """What a login attempt for the account ``email`` (its key) counts against: this browser's device cookie
    for the account if it has one, else the address, the account, and the two together."""
    device = _trusted_device(email)
    if device is not None:
        return {f"device:{device}": DEVICE_LIMIT}
    address = _client_address()
    return {f"email+addr:{email}|{address}": LOGIN_LIMITS["email+addr"], f"email:{email}": LOGIN_LIMITS["email"],
            f"addr:{address}": LOGIN_LIMITS["addr"]}  # fmt: skip


def _check_password(store: Accounts, email: str, password: object, keys: dict[str, int]) -> User | None:
    """``authenticate`` under the limits ``keys``: 429 when over them; a success is not counted."""
    wait, attempt = store.attempt(keys, WINDOW_S)
    if attempt is None:
        raise ApiError(429, "too_many_attempts", f"too many failed attempts; try again in {int(wait) + 1} s")
    user = store.authenticate(email, password)
    if user is not None:
        store.forgive(keys, attempt)
    return user


@bp.get("/api/me")
def me():
    mode = served().config.serve.auth
    user = current_user.public() if current_user.is_authenticated else None
    if user is not None:
        user["admin"] = served().accounts.has_role(current_user.id)
    return jsonify({"auth": mode, "signup": served().config.serve.signup and mode != "none", "user": user})


@bp.post("/api/signup")
def signup():
    store = accounts()
    if not served().config.serve.signup:
        raise ApiError(403, "signup_closed", "this server does not take new accounts (serve.signup: false)")
    body = json_body()
    wait, _ = store.attempt({f"signup:{_client_address()}": SIGNUP_LIMIT}, WINDOW_S)
    if wait > 0:
        raise ApiError(429, "too_many_attempts", f"too many sign-ups from here; try again in {int(wait) + 1} s")
    user = store.create(body.get("email"), body.get("password"))
    login_user(user)
    return _remember_device(jsonify({"user": user.public()}), email_key(user.email)), 201


@bp.post("/api/login")
def login():
    store, body = accounts(), json_body()
    email = body.get("email").strip() if isinstance(body.get("email"), str) else ""
    key = email_key(email)  # limits and device cookies count per account, however its address is spelled
    user = _check_password(store, email, body.get("password"), _login_limits(key)) if email else None
    if user is None:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    login_user(user)
    return _remember_device(jsonify({"user": user.public()}), key)


@bp.post("/api/logout")
def logout():
    _session_only()  # a token cannot sign its owner's browsers out
    if current_user.is_authenticated:
        accounts().end_sessions(current_user.id)  # the cookie, even if copied, no longer works
    logout_user()
    return Response(status=204)


@bp.delete("/api/account")
def delete_account():
    store, user_id = accounts(), owner()
    _session_only()
    body = json_body()
    # the signed-in person's own guesses: strangers' failures at this account must not block its deletion
    confirm = {f"confirm:{user_id}": CONFIRM_LIMIT}
    if _check_password(store, current_user.email, body.get("password"), confirm) is None:
        raise ApiError(403, "invalid_credentials", "confirm with your current password")
    store.delete(user_id)
    logout_user()
    return Response(status=204)


@bp.get("/api/tokens")
def list_tokens():
    store, user_id = accounts(), owner()
    _session_only()
    return jsonify({"tokens": store.tokens(user_id)})


@bp.post("/api/tokens")
def create_token():
    store, user_id = accounts(), owner()
    _session_only()
    return jsonify(store.create_token(user_id, json_body().get("name"))), 201


@bp.delete("/api/tokens/<rowid:token_id>")
def revoke_token(token_id: int):
    store, user_id = accounts(), owner()
    if _bearer_sent() and g.get("token_id") != token_id:
        raise ApiError(403, "session_required", "an API token can revoke only itself; sign in on the page for others")
    if not store.revoke_token(user_id, token_id):
        raise ApiError(404, "not_found", f"no token {token_id} on this account")
    return Response(status=204)
