"""GET /metrics: the Prometheus text exposition, for a scraper holding METRICS_TOKEN or on the admin
listener.

The series name no key, token or prompt, but they do tell an onlooker how busy the gateway is, which
models it serves and what it costs, so they are not public. With METRICS_TOKEN set, a scraper sends it
as a bearer token on either port. Without it, /metrics answers only where the admin site does (the
HTTPS listener, or a TLS proxy's forwards with TRUST_PROXY_HEADERS) and refuses the API port with 403.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from claude_code_api.config import Settings
from claude_code_api.errors import AuthenticationError, PermissionDeniedError
from claude_code_api.metrics import CONTENT_TYPE, GatewayMetrics

router = APIRouter(include_in_schema=False)

METRICS_PATH = "/metrics"


def on_admin_listener(request: Request, settings: Settings) -> bool:
    """Tells whether a request came in where the admin site is served: over TLS, or through a TLS proxy.

    The same rule as the admin site's guard; `serve` turns uvicorn's proxy headers off, so a local
    client cannot claim `https` with a header.
    """
    if request.scope.get("scheme") == "https":
        return True
    if not settings.trust_proxy_headers:
        return False
    # A proxy that appends to a list puts its own value last.
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip()
    return forwarded.lower() == "https"


async def authorize_scrape(request: Request) -> None:
    """Lets a scrape through, or raises 401 (wrong or missing METRICS_TOKEN) or 403 (API port)."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is not None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise AuthenticationError(
                "GET /metrics needs METRICS_TOKEN, sent as 'Authorization: Bearer <METRICS_TOKEN>'."
            )
        return
    if not on_admin_listener(request, settings):
        raise PermissionDeniedError(
            "GET /metrics is served on the admin site's HTTPS listener only; "
            "set METRICS_TOKEN to scrape it on this port with a bearer token."
        )


@router.get(METRICS_PATH, dependencies=[Depends(authorize_scrape)])
async def metrics(request: Request) -> Response:
    registry: GatewayMetrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
