"""Fixtures of the integration tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import openai
import pytest
import redis
from sqlalchemy import make_url

from claude_code_api.config import Settings
from claude_code_api.store.database import Database
from tests.integration.admin_site import AdminSite, log_in, make_admin_settings, open_site
from tests.integration.gateway_harness import GatewayServer, make_settings
from tests.integration.mock_anthropic import MockAnthropic

# --- databases: each store test runs on a fresh SQLite file and on a fresh PostgreSQL database ---

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_START_POSTGRES = (
    "start it (apt-get install postgresql && service postgresql start) or set TEST_POSTGRES_URL "
    "to a server where this user may CREATE DATABASE"
)


def _postgres_dsn(database: str | None = None) -> str:
    """TEST_POSTGRES_URL as asyncpg and SQLAlchemy both read it, optionally naming another database."""
    url = make_url(TEST_POSTGRES_URL).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server's URL; skips (fails under CI) when nothing listens there."""
    url = make_url(TEST_POSTGRES_URL)
    address = (url.host or "127.0.0.1", url.port or 5432)
    try:
        socket.create_connection(address, timeout=3).close()
    except OSError as exc:
        shown = url.render_as_string(hide_password=True)
        message = f"PostgreSQL is unreachable at {shown} ({exc}): {_START_POSTGRES}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(f"{message}. Skipped outside CI; CI=true makes this a failure.")
    return _postgres_dsn()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """The URL of a new, empty database: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    async with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
async def postgres_database(postgres_server: str) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database of its own, dropped afterwards."""
    async with fresh_postgres_database(postgres_server) as url:
        yield url


@contextlib.asynccontextmanager
async def fresh_postgres_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new PostgreSQL database of its own for the block, dropped afterwards."""
    name = await create_postgres_database(admin_dsn)
    try:
        yield _postgres_dsn(name)
    finally:
        await drop_postgres_database(admin_dsn, name)


async def create_postgres_database(admin_dsn: str) -> str:
    """Creates a database with a random name and returns the name."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def drop_postgres_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def postgres_database_url(name: str) -> str:
    """The URL of the database `name` on the test server."""
    return _postgres_dsn(name)


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[Database]:
    """A Database on `database_url` with no tables yet."""
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def database(empty_database: Database) -> Database:
    """A Database on `database_url`, migrated to the latest revision."""
    await empty_database.upgrade()
    return empty_database


# --- Redis: limits shared between gateways, each test under a key prefix of its own ---

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_START_REDIS = (
    "start it (apt-get install redis-server && service redis-server start) or set TEST_REDIS_URL "
    "to a server this test may write to"
)


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The Redis server's URL; skips (fails under CI) when nothing answers there."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        # Host and port only: the URL may hold a password.
        where = client.connection_pool.connection_kwargs
        shown = where.get("path") or f"{where.get('host')}:{where.get('port')}"
        message = f"Redis is unreachable at {shown} ({exc}): {_START_REDIS}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(f"{message}. Skipped outside CI; CI=true makes this a failure.")
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix(redis_server: str) -> Iterator[str]:
    """A REDIS_KEY_PREFIX no other test uses; its keys are deleted afterwards."""
    prefix = f"test-{secrets.token_hex(6)}"
    yield prefix
    flush_redis_prefix(redis_server, prefix)


def flush_redis_prefix(redis_url: str, prefix: str) -> None:
    """Deletes every key under `prefix`."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- mock Anthropic Messages API: one server for the session, reset around every test ---


@pytest.fixture(scope="session")
def mock_anthropic_server() -> Iterator[MockAnthropic]:
    """The session's MockAnthropic; tests take `mock_anthropic`, which resets it."""
    with MockAnthropic() as mock:
        yield mock


@pytest.fixture
def mock_anthropic(mock_anthropic_server: MockAnthropic) -> Iterator[MockAnthropic]:
    """The mock Messages API with nothing queued or recorded; hangs end when the test does."""
    mock_anthropic_server.reset()
    yield mock_anthropic_server
    mock_anthropic_server.reset()


# --- the gateway, served for real, and its clients ---


@pytest.fixture
def gateway_server(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A running gateway on a fresh data directory, pointed at the mock upstream."""
    with GatewayServer(make_settings(tmp_path / "data", mock_anthropic.url)) as server:
        yield server


@pytest.fixture
def api_key(gateway_server: GatewayServer) -> str:
    """A new API key of the running gateway, on the default test token."""
    return gateway_server.create_key()[1]


@pytest.fixture
def client(gateway_server: GatewayServer, api_key: str) -> Iterator[openai.OpenAI]:
    """The official OpenAI client, pointed at the running gateway without retries."""
    with openai.OpenAI(api_key=api_key, base_url=gateway_server.base_url, max_retries=0, timeout=30) as c:
        yield c


# --- the admin site in-process (admin_site.py), for the test_admin*.py modules ---


@pytest.fixture
def admin_settings(tmp_path: Path) -> Settings:
    """Settings of an admin site on a fresh data directory, with the test admin password."""
    return make_admin_settings(tmp_path / "data")


@pytest.fixture
async def site(admin_settings: Settings) -> AsyncIterator[AdminSite]:
    """The gateway app with its services, on `admin_settings`."""
    async with open_site(admin_settings) as opened:
        yield opened


@pytest.fixture
async def browser(site: AdminSite) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the HTTPS listener that is not logged in."""
    async with site.client() as client:
        yield client


@pytest.fixture
async def admin(browser: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the HTTPS listener with an admin session."""
    response = await log_in(browser)
    assert response.status_code == 303, response.text
    return browser
