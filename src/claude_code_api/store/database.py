"""The database engine and units of work, from DATABASE_URL (SQLite by default, or PostgreSQL).

It also brings the schema up to date with the Alembic migrations shipped in `store/migrations/`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from claude_code_api.security.data_dir import DIR_MODE, create_private_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_BACKEND_ALIASES = {"postgres": "postgresql"}
_SQLITE_BUSY_TIMEOUT_MS = 5_000
_PING_TIMEOUT_SECONDS = 5.0
# Advisory lock keys live in one 64-bit space per database; these eight ASCII bytes are ours.
_MIGRATION_LOCK_KEY = int.from_bytes(b"ccapimig", "big")
# An execution option that our SQLite BEGIN hook reads; see _enable_sqlite_transactions.
_SQLITE_BEGIN_OPTION = "claude_code_api_sqlite_begin"


def normalize_database_url(url: str) -> str:
    """Returns the URL with the async driver we ship for its backend (aiosqlite or asyncpg).

    Accepts `sqlite:///path`, `postgresql://…` and `postgres://…` with or without a driver;
    raises ValueError for any other backend.
    """
    parsed = make_url(url)
    backend = _BACKEND_ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or postgresql://HOST/DB"
        )
    parsed = parsed.set(drivername=_ASYNC_DRIVERS[backend])
    if backend == "postgresql" and "sslmode" in parsed.query:
        # Hosted PostgreSQL URLs carry libpq's sslmode, which asyncpg takes under the name ssl.
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict(
            {"ssl": parsed.query["sslmode"]}
        )
    return parsed.render_as_string(hide_password=False)


def alembic_config(connection: Connection) -> Config:
    """Returns the Alembic configuration that runs our migrations on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


class Database:
    """One engine and its sessions; built by `Database.from_url`, disposed of at shutdown."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Creates the engine for a DATABASE_URL; for SQLite, also the file's directory."""
        parsed = make_url(normalize_database_url(url))
        if parsed.get_backend_name() == "sqlite":
            _create_parent_directory(parsed)
            engine = create_async_engine(parsed)
            _enable_sqlite_transactions(engine)
        else:
            # Servers and proxies close idle connections; checking before use saves a request.
            engine = create_async_engine(parsed, pool_pre_ping=True)
        return cls(engine)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Yields a session whose work is committed at the block's end, rolled back if it raises."""
        async with self._sessions.begin() as session:
            yield session

    async def upgrade(self) -> None:
        """Brings the schema to the latest migration; safe to run from several instances at once."""
        async with self._engine.connect() as connection:
            if self._engine.dialect.name == "sqlite":
                # IMMEDIATE takes SQLite's write lock before Alembic reads the current revision, so
                # a second process waits for the first instead of failing to upgrade a read lock.
                await connection.execution_options(**{_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            async with connection.begin():
                if self._engine.dialect.name == "postgresql":
                    # Held until this transaction ends; PostgreSQL's DDL is transactional, so an
                    # instance that waited here finds the schema complete and Alembic does nothing.
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                await connection.run_sync(_upgrade_to_head)

    async def ping(self) -> bool:
        """Tells whether the database answers a trivial query within a few seconds."""
        try:
            async with asyncio.timeout(_PING_TIMEOUT_SECONDS), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError):
            return False
        return True

    async def dispose(self) -> None:
        """Closes every pooled connection."""
        await self._engine.dispose()


def _upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _create_parent_directory(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        # Owner-only from the start: the file holds key hashes and encrypted OAuth tokens.
        Path(database).parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        create_private_file(Path(database))


def _enable_sqlite_transactions(engine: AsyncEngine) -> None:
    """Makes SQLite use WAL, a busy timeout, foreign keys and real transactions.

    Python's sqlite3 does not BEGIN before DDL or SELECT, so migrations would not be atomic nor
    reads repeatable; as SQLAlchemy's SQLite documentation advises, we emit BEGIN ourselves.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The timeout makes a writer wait for another instead of failing at once with "database is
        # locked"; it comes first because switching to WAL needs a lock too. WAL lets readers
        # proceed while one writer writes.
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN"))
