"""The admin site in-process, called over HTTP(S) through httpx's ASGI transport, for the admin tests.

`AdminSite` opens a real Gateway on a temporary SQLite file (ASGITransport runs no lifespan) and gives
clients that speak to it as the HTTPS listener ("https://testserver") or the plain-HTTP API port.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from claude_code_api.app import create_app
from claude_code_api.config import Settings, load_settings
from claude_code_api.gateway import Gateway
from claude_code_api.store.sessions import SessionStore

ADMIN_PASSWORD = "correct-horse-battery-staple"
HTTPS_ORIGIN = "https://testserver"
SAME_ORIGIN = {"origin": HTTPS_ORIGIN}
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN_PASSWORD}"}

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
API_KEY = re.compile(r"sk-[A-Za-z0-9_-]{48}")


def make_admin_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "admin_password": ADMIN_PASSWORD,
        "port": 8000,
        "https_port": 8443,
        "log_level": "DEBUG",
        # The clients below speak to https://testserver: the site's own name.
        "admin_public_url": HTTPS_ORIGIN,
    }
    values.update(overrides)
    return load_settings(**values)


class AdminSite:
    """One gateway app with its services, and clients to call it."""

    def __init__(self, settings: Settings, gateway: Gateway) -> None:
        self.settings = settings
        self.gateway = gateway
        self.app = create_app(settings, gateway)
        # The lifespan would set this; ASGITransport does not run it.
        self.app.state.gateway = gateway

    def client(self, base_url: str = HTTPS_ORIGIN, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url=base_url, **kwargs)


@asynccontextmanager
async def open_site(
    settings: Settings, session_clock: Callable[[], datetime] | None = None
) -> AsyncIterator[AdminSite]:
    """The site on a gateway of its own; `session_clock` tells the time admin sessions expire by."""
    gateway = await Gateway.open(settings)
    if session_clock is not None:
        gateway.sessions = SessionStore(gateway.database, session_clock)
    try:
        yield AdminSite(settings, gateway)
    finally:
        await gateway.aclose()


async def log_in(client: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> httpx.Response:
    """Logs in as a browser would: fetch the form (and its cookie), post it back with its token."""
    form = await client.get("/login")
    token = csrf_field(form.text)
    return await client.post(
        "/login", data={"password": password, "csrf_token": token, "next": "/admin"}, headers=SAME_ORIGIN
    )


def csrf_field(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def csrf_meta(html: str) -> str:
    match = _CSRF_META.search(html)
    assert match, "no csrf-token meta tag on the page"
    return match.group(1)


async def session_csrf(client: httpx.AsyncClient) -> str:
    """The CSRF token of the client's session, as the admin pages carry it."""
    return csrf_meta((await client.get("/admin")).text)
