"""The admin site's frame: its state in this process, the HTTPS-only guard with its security headers, and
the rendering of pages, error pages and static files. The routes themselves are in `routes/admin.py`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import Headers
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claude_code_api import __version__
from claude_code_api.config import Settings
from claude_code_api.errors import GatewayError, PermissionDeniedError
from claude_code_api.routes.admin_chart import compact
from claude_code_api.routes.admin_limits import short_limits, usd
from claude_code_api.security.admin_auth import (
    LoginThrottle,
    MemoryLoginThrottle,
    RedisLoginThrottle,
    derive_admin_key,
    password_fingerprint,
)
from claude_code_api.security.csrf import csrf_token
from claude_code_api.security.encryption import load_or_create_secret
from claude_code_api.security.origins import SiteOrigins, admin_origins, origin_of_host
from claude_code_api.store.sessions import AdminSession

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
STATIC_PATH = "/static"

# The admin site's routes. Everything else (/v1/..., /static/..., routes other modules add) is not guarded.
_ADMIN_EXACT_PATHS = frozenset({"/", "/login", "/logout", "/admin"})
_ADMIN_PATH_PREFIXES = ("/admin/", "/auth/")

SECURITY_HEADERS = {
    # No inline script or style is allowed: an injected <script> or style attribute does not run.
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Same-origin pages keep sending Referer, which the CSRF check falls back on when Origin is absent.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    # Pages show a new API key once; neither the browser nor a proxy may keep a copy.
    "cache-control": "no-store",
}
# Browsers ignore HSTS from a certificate they do not trust, so a self-signed localhost is not pinned.
HSTS_HEADER = ("strict-transport-security", "max-age=31536000")

_templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- the admin site's state and request helpers ------------------------------------------------------


class AdminSite:
    """What the admin routes share within one process: keys derived from the secret, the throttle."""

    def __init__(self, settings: Settings, throttle: LoginThrottle | None = None) -> None:
        self.settings = settings
        self.admin_key = derive_admin_key(load_or_create_secret(settings.data_dir, settings.secret_key))
        self.fingerprint = password_fingerprint(self.admin_key, settings.admin_password)
        self._throttle = throttle
        self._memory_throttle = MemoryLoginThrottle()
        self._redis_throttle: RedisLoginThrottle | None = None
        self.session_lifetime = timedelta(hours=settings.admin_session_hours)
        self.origins = admin_origins(settings)

    def throttle(self, redis_client: aioredis.Redis | None) -> LoginThrottle:
        """The login throttle: the one given at construction, else one in the Redis that the gateway's
        limits use (shared by every instance), else one in this process's memory."""
        if self._throttle is not None:
            return self._throttle
        if redis_client is None:
            return self._memory_throttle
        if self._redis_throttle is None or self._redis_throttle.client is not redis_client:
            self._redis_throttle = RedisLoginThrottle(redis_client, self.settings.redis_key_prefix)
        return self._redis_throttle


def get_site(request: Request) -> AdminSite:
    site: AdminSite = request.app.state.admin_site
    return site


Site = Annotated[AdminSite, Depends(get_site)]


def is_admin_path(path: str) -> bool:
    """Tells whether a path belongs to the admin site, which is served over HTTPS only."""
    return path in _ADMIN_EXACT_PATHS or path.startswith(_ADMIN_PATH_PREFIXES)


def wants_html(request: Request) -> bool:
    """Tells whether an error for this request is shown as a page: a browser asking outside /v1."""
    return _wants_html(request.url.path, request.headers)


def _wants_html(path: str, headers: Headers) -> bool:
    return not (path == "/v1" or path.startswith("/v1/")) and "text/html" in headers.get("accept", "")


def _forwarded_value(headers: Headers, name: str) -> str | None:
    # A proxy that appends to a list puts its own value last; one that overwrites leaves only its own.
    value = headers.get(name)
    if not value:
        return None
    return value.split(",")[-1].strip() or None


def _via_tls(scope: Scope, headers: Headers, trust_proxy_headers: bool) -> bool:
    if scope.get("scheme") == "https":
        return True
    return trust_proxy_headers and (_forwarded_value(headers, "x-forwarded-proto") or "").lower() == "https"


def client_address(request: Request, settings: Settings) -> str:
    """The visitor's address: the TCP peer, or with TRUST_PROXY_HEADERS the one the proxy forwarded."""
    if settings.trust_proxy_headers:
        forwarded = _forwarded_value(request.headers, "x-forwarded-for")
        if forwarded:
            return forwarded
    return request.client.host if request.client else "unknown"


def site_host(request: Request, settings: Settings) -> str:
    """The host (and port) the visitor's browser asked for; AdminSiteGuard has checked that it is one of
    the site's own."""
    return _requested_host(request.scope, request.headers, settings)


def _requested_host(scope: Scope, headers: Headers, settings: Settings) -> str:
    proxied = scope.get("scheme") != "https" and settings.trust_proxy_headers
    host = _forwarded_value(headers, "x-forwarded-host") if proxied else None
    return host or headers.get("host") or "localhost"


def request_origins(scope: Scope, headers: Headers, settings: Settings, origins: SiteOrigins) -> SiteOrigins:
    """The origins an admin request may come from: the site's own (ADMIN_PUBLIC_URL, or the certificate's
    names and the listener), or, through a trusted proxy without ADMIN_PUBLIC_URL, the host it forwards."""
    proxied = scope.get("scheme") != "https" and settings.trust_proxy_headers
    if proxied and not settings.admin_public_url:
        forwarded = origin_of_host(_requested_host(scope, headers, settings))
        if forwarded is not None:
            return SiteOrigins((forwarded,))
    return origins


def site_origins(request: Request, site: AdminSite) -> SiteOrigins:
    """The origins the CSRF check accepts for this request (see `request_origins`)."""
    return request_origins(request.scope, request.headers, site.settings, site.origins)


def session_csrf_token(site: AdminSite, session: AdminSession) -> str:
    """The CSRF token of a session: its pages carry it, its form posts and fetch() calls send it back."""
    return csrf_token(site.admin_key, "session", session.session_id)


# --- rendering ------------------------------------------------------------------------------------------


def render_page(
    request: Request,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Renders an admin page with the context every page shares."""
    site = get_site(request)
    session: AdminSession | None = context.pop("session", None)
    html = _templates.get_template(template).render(
        version=__version__,
        static_url=static_url,
        path=request.url.path,
        signed_in=session is not None,
        csrf_token=session_csrf_token(site, session) if session else "",
        default_password=session is not None and site.settings.uses_default_admin_password,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The error page for a browser on the admin site: `error.html` with the status and message."""
    return HTMLResponse(
        _render_error_html(status, message),
        status_code=status,
        headers={**(headers or {}), **SECURITY_HEADERS},
    )


def _render_error_html(status: int, message: str, link: str | None = None, title: str | None = None) -> str:
    titles = {
        400: "Bad request",
        401: "Not signed in",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        413: "Too large",
        429: "Too many attempts",
    }
    return _templates.get_template("error.html").render(
        version=__version__,
        static_url=static_url,
        status=status,
        title=title or titles.get(status, "Something went wrong"),
        message=message,
        link=link,
        signed_in=False,
        csrf_token="",
        default_password=False,
        path="",
    )


@functools.cache
def _static_version(name: str) -> str:
    path = STATIC_DIR / name
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.is_file() else __version__


def static_url(name: str) -> str:
    """The URL of a static file, with its content hash so that a new release is never served stale."""
    return f"{STATIC_PATH}/{name}?v={_static_version(name)}"


def static_files() -> StaticFiles:
    """The app that serves the admin site's CSS, JavaScript and icons from the package."""
    return StaticFiles(directory=STATIC_DIR)


def _when(moment: datetime | None, zone: bool = True) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M" + (" UTC" if zone else ""))


def _token_advice(detail: str) -> str:
    # The gateway stores "<kind>: <message>" (store/keys.py reads the kind); the badge beside it says it.
    kind, colon, message = detail.partition(": ")
    return message if colon and kind in ("rejected", "usage limit", "failed") else detail


_templates.filters["when"] = _when
_templates.filters["token_advice"] = _token_advice
_templates.filters["thousands"] = lambda number: f"{number:,}"
_templates.filters["compact"] = compact
_templates.filters["usd"] = usd
_templates.filters["short_limits"] = short_limits


# --- HTTPS only, with security headers -----------------------------------------------------------------


class AdminSiteGuard:
    """Refuses admin routes that did not arrive over TLS, and adds security headers to their answers.

    A request arrived over TLS when it came in on the HTTPS listener or, with TRUST_PROXY_HEADERS, when
    a TLS-terminating proxy forwarded it with `X-Forwarded-Proto: https`. Pure ASGI, so that streaming
    responses elsewhere keep their disconnect detection.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.origins = admin_origins(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _via_tls(scope, headers, self.settings.trust_proxy_headers):
            await self._refuse(scope, headers, receive, send)
            return
        origins = request_origins(scope, headers, self.settings, self.origins)
        if not origins.allows(origin_of_host(_requested_host(scope, headers, self.settings))):
            # The Host is the client's to choose: a page under another name (DNS rebinding) must not
            # pass for the admin site.
            await self._refuse_host(scope, headers, receive, send, origins)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [
                    (name.encode(), value.encode())
                    for name, value in (*SECURITY_HEADERS.items(), HSTS_HEADER)
                    if name.encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, headers: Headers, receive: Receive, send: Send) -> None:
        # The link names the site's configured origin, never the request's Host.
        https_url = f"{self.origins.primary}{scope['path']}"
        message = f"The admin site is served over HTTPS only: open {https_url}"
        await _forbidden(scope, headers, receive, send, message, https_url, "HTTPS required")

    async def _refuse_host(
        self, scope: Scope, headers: Headers, receive: Receive, send: Send, origins: SiteOrigins
    ) -> None:
        https_url = f"{origins.primary}{scope['path']}"
        message = (
            f"The admin site answers only as {origins} (ADMIN_PUBLIC_URL, or the certificate's names): "
            f"open {https_url}"
        )
        await _forbidden(scope, headers, receive, send, message, https_url, "Unknown site name")


async def _forbidden(
    scope: Scope, headers: Headers, receive: Receive, send: Send, message: str, link: str, title: str
) -> None:
    response: Response
    if _wants_html(scope["path"], headers):
        response = HTMLResponse(
            _render_error_html(403, message, link=link, title=title),
            status_code=403,
            headers=SECURITY_HEADERS,
        )
    else:
        error: GatewayError = PermissionDeniedError(message)
        response = Response(orjson.dumps(error.to_body()), status_code=403, media_type="application/json")
    await response(scope, receive, send)
