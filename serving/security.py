"""Safe when exposed: a Host allow-list, a same-origin check on every state-changing request, security headers.

Cross-site request forgery: a browser sends ``Origin`` (or at least ``Referer``) with every cross-origin POST
or DELETE, so a request from another origin is refused (403 ``cross_origin``) whatever it carries. Requests
with an API token (``Authorization: Bearer``) carry no ambient credentials and are not checked; neither are
non-browser clients, which send neither header. The page's own script runs under a Content-Security-Policy
without inline script, so an injected ``<script>`` cannot run.

Config keys: ``serve.host``, ``serve.allowed_hosts``, ``serve.public_url``, ``serve.auth``.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from flask import Flask, Response, request

from configs.schema import ServeConfig
from serving.errors import ApiError

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"]
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",  # the in-browser model's WebAssembly runtime
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server private to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def trusted_hosts(serve: ServeConfig) -> list[str]:
    """Host names the server answers to: ``serve.allowed_hosts``, else loopback names, a named bind address
    and ``serve.public_url``'s host. A name starting with ``.`` also allows its subdomains."""
    if serve.allowed_hosts is not None:
        return [_bare(host) for host in serve.allowed_hosts]
    hosts = list(_LOOPBACK_NAMES)
    if serve.host not in ("0.0.0.0", "::") and _bare(serve.host) not in hosts:
        hosts.append(_bare(serve.host))
    if serve.public_url:
        hosts.append(urlsplit(serve.public_url).hostname or "")
    return hosts


def _bare(host: str) -> str:
    return host.strip().strip("[]").lower()


# RFC 9110's Host: a DNS name or IPv4 address, or a bracketed IPv6 one, then an optional port; nothing else
_HOST = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def host_allowed(host_header: str, trusted: list[str]) -> bool:
    """Whether a ``Host`` header (``name``, ``name:port``, ``[v6]:port``) names one of ``trusted``. Anything
    else (user info, fragments, a port that is not digits) is refused before any name is compared."""
    match = _HOST.fullmatch(host_header)
    if match is None:
        return False
    name = _bare(match["name"])
    return any(name == t or (t.startswith(".") and (name.endswith(t) or name == t[1:])) for t in trusted)


def exposure_warning(serve: ServeConfig) -> str | None:
    """A loud warning when the server is reachable from other machines with no accounts (``auth: none``)."""
    if serve.auth != "none" or is_loopback(serve.host):
        return None
    return (
        f"WARNING: serve.host={serve.host} makes the server reachable from other machines, and serve.auth is "
        "none: anyone who can reach it can predict, read and delete the shared history. "
        "Set serve.auth: optional or required (accounts), or bind 127.0.0.1."
    )


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL (an ``Origin`` or ``Referer`` value), lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme in ("http", "https") and parts.netloc else None


def check_same_origin(public_origin: str | None = None) -> None:
    """Refuse a state-changing browser request that comes from another origin (403 ``cross_origin``): scheme,
    host and port must all be this server's. ``public_origin`` (``scheme://host[:port]`` of
    ``serve.public_url``) is ours too, for a proxy that rewrites Host."""
    if request.method not in _UNSAFE:
        return
    bearer = request.authorization is not None and request.authorization.type == "bearer"
    if bearer and not request.cookies:
        return  # a program with a token: no ambient credentials to abuse
    sent = request.headers.get("Origin") or request.headers.get("Referer")
    ours = (f"{request.scheme}://{request.host}".lower(), public_origin)
    if sent is None:
        # a browser names the origin of every cross-origin POST; a client that names none and carries no
        # session cookie is not a browser acting for a signed-in user
        if request.headers.get("Sec-Fetch-Site") not in ("cross-site", "same-site") and not request.cookies:
            return
    elif (origin := _origin_of(sent)) is not None and origin in ours:
        return  # ("null", a file: or data: page, has no origin of ours)
    raise ApiError(403, "cross_origin", "requests from other sites are refused")


def install_security(app: Flask, serve: ServeConfig) -> None:
    """Host allow-list, same-origin check and security headers on every response of ``app``."""
    trusted = trusted_hosts(serve)
    public_origin = _origin_of(serve.public_url) if serve.public_url else None
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = bool(serve.public_url and serve.public_url.startswith("https://"))
    app.config["SESSION_COOKIE_NAME"] = "stj_session"

    @app.before_request
    def _guard() -> None:
        # werkzeug's TRUSTED_HOSTS cannot match IPv6 names, hence this check
        if not host_allowed(request.headers.get("Host", ""), trusted):
            raise ApiError(400, "bad_host", "this server does not answer to that host name (serve.allowed_hosts)")
        check_same_origin(public_origin)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/"):  # a user's own data (history, thumbnails, tokens, who they are)
            response.headers["Cache-Control"] = "no-store"
        return response
