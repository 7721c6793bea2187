"""create_app(settings): the gateway's routes, middleware and error handlers.

One ASGI app answers on both listeners: the API on the plain-HTTP port and the admin site on the HTTPS
port. Services (store, runner) live in a `Gateway` (gateway.py) that the app's lifespan opens and
closes, or that a caller who runs several servers opens once and passes in.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claude_code_api import __version__
from claude_code_api.access import AccessMiddleware
from claude_code_api.apis.anthropic_messages.encode import anthropic_error_body
from claude_code_api.claude.routing import CredentialReport
from claude_code_api.claude.runner import RunnerStats
from claude_code_api.config import Settings
from claude_code_api.errors import GatewayError
from claude_code_api.gateway import Gateway
from claude_code_api.logs import request_id_var
from claude_code_api.metrics import GatewayMetrics
from claude_code_api.routes import (
    admin,
    admin_credentials,
    admin_site,
    chat,
    deps,
    messages,
    models,
    responses,
)
from claude_code_api.routes import metrics as metrics_route

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"


def create_app(settings: Settings, gateway: Gateway | None = None) -> FastAPI:
    """Builds the ASGI app; without a `gateway`, its lifespan opens and closes one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if gateway is not None:
            app.state.gateway = gateway
            yield
            return
        opened = await Gateway.open(settings)
        app.state.gateway = opened
        try:
            yield
        finally:
            await opened.aclose()

    app = FastAPI(
        title="claude-code-api",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.admin_site = admin_site.AdminSite(settings)
    app.state.metrics = GatewayMetrics(lambda: _runner_stats(app), lambda: _credential_reports(app))
    app.include_router(models.router)
    app.include_router(chat.router)
    app.include_router(messages.router)
    app.include_router(responses.router)
    app.include_router(metrics_route.router)
    app.include_router(admin.router)
    app.include_router(admin_credentials.router)
    app.mount(admin_site.STATIC_PATH, admin_site.static_files(), name="static")
    _register_error_handlers(app)
    app.add_middleware(admin_site.AdminSiteGuard, settings=settings)
    app.add_middleware(AccessMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app


def _runner_stats(app: FastAPI) -> RunnerStats | None:
    gateway: Gateway | None = getattr(app.state, "gateway", None)
    return None if gateway is None else gateway.runner.stats()


def _credential_reports(app: FastAPI) -> dict[str, CredentialReport] | None:
    gateway: Gateway | None = getattr(app.state, "gateway", None)
    return None if gateway is None else gateway.credential_reports()


def respond(request: Request, error: GatewayError) -> Response:
    """The error as the caller reads it: error.html for a browser on the admin site, Anthropic's shape
    for the Messages API, OpenAI's JSON shape for everyone else."""
    if admin_site.wants_html(request):
        return admin_site.render_error(request, error.status, error.message, error.headers())
    if messages.wants_anthropic_errors(request):
        return messages.anthropic_error_response(error)
    return error_response(error)


def _register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return respond(request, deps.validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        error = GatewayError(str(exc.detail))
        body = error.to_body()
        body["error"]["type"] = "invalid_request_error"
        body["error"]["code"] = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        if exc.status_code == 404:
            body["error"]["message"] = f"Unknown route: {request.method} {request.url.path}"
        if admin_site.wants_html(request):
            return admin_site.render_error(request, exc.status_code, body["error"]["message"], exc.headers)
        if messages.wants_anthropic_errors(request):
            body = anthropic_error_body(exc.status_code, body["error"]["message"])
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def error_response(error: GatewayError) -> Response:
    """An error in OpenAI's shape with its status and retry headers."""
    return Response(
        orjson.dumps(error.to_body()),
        status_code=error.status,
        headers=error.headers(),
        media_type="application/json",
    )


class RequestIdMiddleware:
    """Gives each request an id, for its log lines and the `x-request-id` response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{secrets.token_hex(12)}"
        token = request_id_var.set(request_id)

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers: list[Any] = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Handled here rather than by Starlette's outermost handler, so that the 500 and its log
            # line carry the request id.
            if started:
                raise
            logger.exception("Unhandled error on %s %s", scope.get("method"), scope.get("path"))
            error = GatewayError("The gateway failed unexpectedly; see its log.")
            await respond(Request(scope), error)(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
