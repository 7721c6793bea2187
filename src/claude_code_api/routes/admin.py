"""The admin site's routes: login, token exchange, key dashboard, a key's page and limits, revoke, logout,
and a JSON API for scripts. The credential pages are in `admin_credentials.py`.

Pages are rendered on the server and work without JavaScript; `static/admin.js` only adds copy buttons,
live filtering and an in-page revoke confirmation. `routes/admin_site.py` holds what they share: state,
rendering, and the guard that keeps every admin route HTTPS-only. The wire shapes, the limits form and
the usage chart are pure modules beside it (`admin_schemas.py`, `admin_limits.py`, `admin_chart.py`).
"""

from __future__ import annotations

import functools
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import ImmutableMultiDict

from claude_code_api.config import Settings
from claude_code_api.errors import (
    AuthenticationError,
    InvalidOAuthTokenError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from claude_code_api.gateway import Gateway
from claude_code_api.routes.admin_chart import build_chart, chart_range, range_links
from claude_code_api.routes.admin_credential_forms import (
    MAX_RANKS,
    SUBSCRIPTION_TERMS,
    rank_choices,
    read_rank_form,
)
from claude_code_api.routes.admin_limits import LIMIT_FIELDS, LimitsForm, read_limits_form
from claude_code_api.routes.admin_schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyLimitsUpdate,
    ApiKeyPublic,
)
from claude_code_api.routes.admin_site import (
    AdminSite,
    Site,
    client_address,
    get_site,
    is_admin_path,
    render_page,
    session_csrf_token,
    site_host,
    site_origins,
)
from claude_code_api.routes.deps import (
    GatewayDep,
    parse_wire_request,
    read_body,
    validation_error,
)
from claude_code_api.security.admin_auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    password_matches,
)
from claude_code_api.security.csrf import (
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    csrf_token,
    csrf_token_matches,
    origin_problem,
)
from claude_code_api.security.ratelimit import budget_period_end, budget_period_start
from claude_code_api.store.keys import ApiKey
from claude_code_api.store.sessions import AdminSession

_FORM_MAX_BYTES = 64 * 1024
_LOGIN_NONCE_MAX_AGE = 60 * 60
SETUP_TOKEN_DOCS_URL = "https://docs.anthropic.com/en/docs/claude-code/cli-reference"

router = APIRouter(include_in_schema=False)


def _api_base_url(request: Request, settings: Settings) -> str:
    """Where API clients reach /v1 from where this visitor stands, for the ready-to-paste examples."""
    host = site_host(request, settings)
    if request.url.scheme != "https":
        # Through a TLS proxy, the API is served by the same proxy under the same name.
        return f"https://{host}/v1"
    hostname = urlsplit(f"//{host}").hostname or "localhost"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return f"http://{hostname}:{settings.port}/v1"


# --- sessions, CSRF and the two ways to authenticate --------------------------------------------------


async def current_session(request: Request, site: Site, gateway: GatewayDep) -> AdminSession | None:
    """The admin session named by the session cookie, or None."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    return await gateway.sessions.find(session_id, site.fingerprint)


PageSession = Annotated[AdminSession | None, Depends(current_session)]


@dataclass(frozen=True)
class AdminCaller:
    """Who called an admin JSON route: a logged-in browser, or a script holding the admin password."""

    via: Literal["session", "password"]
    session: AdminSession | None


async def authenticate_admin(
    request: Request, site: Site, session: PageSession, gateway: GatewayDep
) -> AdminCaller:
    """The admin, by `Authorization: Bearer <ADMIN_PASSWORD>` or by session (then with a CSRF token).

    401 without either, 403 for a session request that fails the CSRF checks, 429 while the caller's
    address is throttled after failed passwords.
    """
    scheme, _, password = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and password.strip():
        address = client_address(request, site.settings)
        throttle = site.throttle(gateway.limiter.backend.redis_client)
        await _refuse_if_throttled(throttle, address)
        if not password_matches(password.strip(), site.settings.admin_password):
            await throttle.record_failure(address)
            raise AuthenticationError("Incorrect admin password in the Authorization header.")
        await throttle.record_success(address)
        return AdminCaller("password", None)
    if session is None:
        raise AuthenticationError(
            "Log in to the admin site, or send 'Authorization: Bearer <ADMIN_PASSWORD>' over HTTPS."
        )
    if request.method not in ("GET", "HEAD"):
        _check_csrf(request, site, session, request.headers.get(CSRF_HEADER))
    return AdminCaller("session", session)


AdminUser = Annotated[AdminCaller, Depends(authenticate_admin)]


def _check_csrf(request: Request, site: AdminSite, session: AdminSession, given: str | None) -> None:
    problem = origin_problem(request.headers, site_origins(request, site))
    if problem is not None:
        raise PermissionDeniedError(f"Refused as a possible cross-site request: {problem}.")
    if not csrf_token_matches(session_csrf_token(site, session), given):
        raise PermissionDeniedError(
            "Refused as a possible cross-site request: the CSRF token is missing or wrong. "
            "Reload the page and try again."
        )


async def _refuse_if_throttled(throttle: LoginThrottle, address: str) -> None:
    wait = await throttle.retry_after(address)
    if wait is not None:
        raise RateLimitError(
            f"Too many failed logins from your address. Try again in {math.ceil(wait)} second(s).",
            retry_after=wait,
        )


# --- helpers -------------------------------------------------------------------------------------------


def _json(body: BaseModel | dict[str, Any], status: int = 200) -> Response:
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


async def _public_keys(gateway: Gateway) -> list[ApiKeyPublic]:
    keys = await gateway.keys.list_keys()
    totals = await gateway.usage.totals_by_key()
    now = datetime.now(UTC)
    return [ApiKeyPublic.of(key, totals.get(key.id), now) for key in keys]


def _named_like(keys: list[ApiKeyPublic], query: str) -> list[ApiKeyPublic]:
    needle = query.strip().casefold()
    return [key for key in keys if needle in key.name.casefold()]


# --- login and logout -----------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    # Only a path of this site: "//evil.example" or "/\\evil.example" would leave it.
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target if is_admin_path(urlsplit(target).path) else "/"


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/login" if target == "/" else f"/login?next={quote(target, safe='')}"
    return RedirectResponse(location, status_code=303)


def _login_page(
    request: Request, site: AdminSite, nonce: str | None, status: int = 200, error: str | None = None
) -> HTMLResponse:
    fresh = nonce is None
    nonce = nonce or secrets.token_urlsafe(32)
    response = render_page(
        request,
        "login.html",
        status=status,
        next=_safe_next(request.query_params.get("next")),
        login_csrf_token=csrf_token(site.admin_key, "login", nonce),
        error=error,
    )
    if fresh:
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=_LOGIN_NONCE_MAX_AGE, secure=True, httponly=True, samesite="strict"
        )
    return response


@router.get("/login")
async def login_form(request: Request, site: Site, session: PageSession) -> Response:
    if session is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request, site, request.cookies.get(LOGIN_COOKIE))


@router.post("/login")
async def login(request: Request, site: Site, gateway: GatewayDep) -> Response:
    problem = origin_problem(request.headers, site_origins(request, site))
    if problem is not None:
        raise PermissionDeniedError(f"Refused as a possible cross-site request: {problem}.")
    address = client_address(request, site.settings)
    throttle = site.throttle(gateway.limiter.backend.redis_client)
    await _refuse_if_throttled(throttle, address)
    form = await _read_form(request)
    nonce = request.cookies.get(LOGIN_COOKIE)
    expected = csrf_token(site.admin_key, "login", nonce) if nonce else ""
    if not nonce or not csrf_token_matches(expected, form.get(CSRF_FORM_FIELD)):
        return _login_page(
            request, site, None, status=403, error="This login form has expired. Please sign in again."
        )
    if not password_matches(form.get("password", ""), site.settings.admin_password):
        await throttle.record_failure(address)
        return _login_page(request, site, nonce, status=401, error="Wrong password.")
    await throttle.record_success(address)
    session = await gateway.sessions.create(site.fingerprint, site.session_lifetime)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=math.ceil(site.session_lifetime.total_seconds()),
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, secure=True, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request, site: Site, session: PageSession, gateway: GatewayDep) -> Response:
    if session is not None:
        form = await _read_form(request)
        _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
        await gateway.sessions.delete(session.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite="strict")
    return response


async def _read_form(request: Request) -> ImmutableMultiDict[str, str]:
    body = await read_body(request, _FORM_MAX_BYTES)
    try:
        return ImmutableMultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise InvalidRequestError("The form is not valid UTF-8.") from None


# --- the exchange page ------------------------------------------------------------------------------


@router.get("/")
async def exchange_form(request: Request, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    return await _exchange_page(request, session, gateway)


@router.post("/")
async def exchange_submit(
    request: Request, site: Site, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    name = form.get("name", "")
    page = functools.partial(_exchange_page, request, session, gateway, 400, name=name)
    limits_form, limits = read_limits_form(form, None, datetime.now(UTC))
    if limits_form.errors:
        return await page(limits_form=limits_form)
    ranks: tuple[tuple[str, ...], ...] = ()
    token = form.get("oauth_token", "")
    try:
        ranks = read_rank_form(form)
        if ranks and token.strip():
            raise InvalidRequestError(
                "Paste a subscription's token or choose credentials, not both.", param="credentials"
            )
        if ranks:
            record, api_key = await gateway.keys.create_key(name, credentials=ranks, **limits)
        else:
            record, api_key = await gateway.keys.create_key(name, token, **limits)
    except InvalidOAuthTokenError as exc:
        return await page(token_error=exc.message, limits_form=limits_form)
    except InvalidRequestError as exc:
        if exc.param in LIMIT_FIELDS:
            return await page(limits_form=limits_form.with_error(exc.param, exc.message))
        if exc.param == "credentials":
            return await page(credentials_error=exc.message, ranks=ranks, limits_form=limits_form)
        return await page(name_error=exc.message, limits_form=limits_form)
    return await _exchange_page(request, session, gateway, created=record, api_key=api_key)


async def _exchange_page(
    request: Request,
    session: AdminSession,
    gateway: Gateway,
    status: int = 200,
    *,
    name: str = "",
    token_error: str | None = None,
    name_error: str | None = None,
    credentials_error: str | None = None,
    ranks: tuple[tuple[str, ...], ...] = (),
    limits_form: LimitsForm | None = None,
    created: ApiKey | None = None,
    api_key: str | None = None,
) -> HTMLResponse:
    site = get_site(request)
    return render_page(
        request,
        "exchange.html",
        status=status,
        session=session,
        name=name,
        token_error=token_error,
        name_error=name_error,
        limits_form=limits_form or LimitsForm(),
        created=created,
        api_key=api_key,
        api_base_url=_api_base_url(request, site.settings),
        setup_token_docs_url=SETUP_TOKEN_DOCS_URL,
        credentials_error=credentials_error,
        ranks=ranks,
        choices=rank_choices(await gateway.keys.credentials.list_credentials(), ranks),
        max_ranks=MAX_RANKS,
        subscription_terms=SUBSCRIPTION_TERMS,
    )


# --- the dashboard and a key's pages --------------------------------------------------------------------


@router.get("/admin")
async def dashboard(request: Request, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    query = request.query_params.get("q", "")
    every_key = await _public_keys(gateway)
    revoked_id = request.query_params.get("revoked")
    return render_page(
        request,
        "dashboard.html",
        session=session,
        keys=_named_like(every_key, query),
        query=query,
        summary={
            "keys": len(every_key),
            "active": sum(key.status == "active" for key in every_key),
            "requests": sum(key.usage.requests for key in every_key),
            "tokens": sum(key.usage.input_tokens + key.usage.output_tokens for key in every_key),
        },
        revoked=next((key for key in every_key if key.id == revoked_id), None),
        **await _usage_chart(request, gateway, None),
    )


@router.get("/admin/keys/{key_id}")
async def key_page(request: Request, key_id: str, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    key = await _key_or_404(gateway, key_id)
    now = datetime.now(UTC)
    spent = resets_at = None
    if key.budget_usd is not None:
        spent = await gateway.usage.cost_since(key.id, budget_period_start(key.budget_period, now))
        resets_at = budget_period_end(key.budget_period, now)
    return render_page(
        request,
        "key.html",
        session=session,
        key=ApiKeyPublic.of(key, (await gateway.usage.totals_by_key()).get(key.id), now),
        spent=spent,
        resets_at=resets_at,
        saved=request.query_params.get("saved") == "limits",
        credentials_saved=request.query_params.get("saved") == "credentials",
        ranks=key.credential_ranks,
        **await _usage_chart(request, gateway, key.id),
    )


async def _usage_chart(request: Request, gateway: Gateway, key_id: str | None) -> dict[str, Any]:
    """The usage chart of every key or of one, over the range the query string names."""
    chosen = chart_range(request.query_params.get("range"))
    now = datetime.now(UTC)
    buckets = await gateway.usage.timeline(key_id, chosen.bucket, chosen.since(now), now)
    return {
        "chart": build_chart(buckets, chosen),
        "range_links": range_links(request.url.path, request.query_params, chosen),
    }


@router.get("/admin/keys/{key_id}/limits")
async def edit_limits(request: Request, key_id: str, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    key = await _key_or_404(gateway, key_id)
    return _limits_page(request, session, key, LimitsForm.of(key))


@router.post("/admin/keys/{key_id}/limits")
async def save_limits(
    request: Request, key_id: str, site: Site, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    key = await _key_or_404(gateway, key_id)
    shown, limits = read_limits_form(form, key, datetime.now(UTC))
    if shown.errors:
        return _limits_page(request, session, key, shown, status=400)
    try:
        await gateway.keys.update_key(key.id, **limits)
    except InvalidRequestError as exc:
        return _limits_page(request, session, key, shown.with_error(exc.param, exc.message), status=400)
    return RedirectResponse(f"/admin/keys/{quote(key.id)}?saved=limits", status_code=303)


def _limits_page(
    request: Request, session: AdminSession, key: ApiKey, form: LimitsForm, status: int = 200
) -> HTMLResponse:
    return render_page(request, "limits.html", status=status, session=session, key=key, limits_form=form)


@router.get("/admin/keys/{key_id}/revoke")
async def revoke_confirmation(
    request: Request, key_id: str, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    key = await _key_or_404(gateway, key_id)
    return render_page(request, "revoke.html", session=session, key=key)


@router.post("/admin/keys/{key_id}/revoke")
async def revoke_submit(
    request: Request, key_id: str, site: Site, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    key = await gateway.keys.revoke_key(key_id)
    if key is None:
        raise NotFoundError(f"No key with id {key_id}.")
    return RedirectResponse(f"/admin?revoked={quote(key.id)}", status_code=303)


async def _key_or_404(gateway: Gateway, key_id: str) -> ApiKey:
    key = await gateway.keys.get_key(key_id)
    if key is None:
        raise NotFoundError(f"No key with id {key_id}.")
    return key


# --- the JSON API for scripts ---------------------------------------------------------------------------


@router.post("/auth/exchange")
async def exchange_api(request: Request, admin: AdminUser, gateway: GatewayDep) -> Response:
    body = await read_body(request, _FORM_MAX_BYTES)
    if not body.strip():
        raise InvalidRequestError('Send a JSON object: {"oauth_token": "sk-ant-oat01-...", "name": "..."}.')
    try:
        create = ApiKeyCreate.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
    record, api_key = await gateway.keys.create_key(create.name, create.oauth_token)
    public = ApiKeyPublic.of(record, None, datetime.now(UTC))
    return _json(ApiKeyCreated(**public.model_dump(), api_key=api_key), status=201)


@router.get("/admin/keys")
async def list_keys_api(request: Request, admin: AdminUser, gateway: GatewayDep) -> Response:
    keys = _named_like(await _public_keys(gateway), request.query_params.get("q", ""))
    return _json({"object": "list", "data": [key.model_dump(mode="json") for key in keys]})


@router.patch("/admin/keys/{key_id}")
async def update_key_api(request: Request, key_id: str, admin: AdminUser, gateway: GatewayDep) -> Response:
    # A limit left out of the body stays as it is; one sent as null is lifted.
    update = parse_wire_request(await read_body(request, _FORM_MAX_BYTES), ApiKeyLimitsUpdate)
    key = await gateway.keys.update_key(key_id, **update.limits())
    if key is None:
        raise NotFoundError(f"No key with id {key_id}.")
    totals = (await gateway.usage.totals_by_key()).get(key.id)
    return _json(ApiKeyPublic.of(key, totals, datetime.now(UTC)))


@router.delete("/admin/keys/{key_id_or_key}")
async def revoke_key_api(key_id_or_key: str, admin: AdminUser, gateway: GatewayDep) -> Response:
    # The seed named this route DELETE /admin/keys/:apiKey; the public id works too, and is what to log.
    key = await gateway.keys.revoke_key(key_id_or_key)
    if key is None:
        raise NotFoundError("No such key.")
    totals = (await gateway.usage.totals_by_key()).get(key.id)
    return _json(ApiKeyPublic.of(key, totals, datetime.now(UTC)))
