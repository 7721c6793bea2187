"""SessionStore on SQLite and PostgreSQL: admin sessions by hashed id, bound to the password, expiring."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from claude_code_api.store.sessions import SessionStore
from claude_code_api.store.tables import AdminSessionRow

HOUR = timedelta(hours=1)


async def test_created_session_is_found_with_the_same_fingerprint(database):
    store = SessionStore(database)
    now = datetime.now(UTC)
    session = await store.create("fp-1", HOUR, now)
    found = await store.find(session.session_id, "fp-1", now)
    assert found is not None
    assert found.expires_at == session.expires_at
    assert found.expires_at - found.created_at == HOUR


async def test_only_a_hash_of_the_session_id_is_stored(database):
    store = SessionStore(database)
    session = await store.create("fp-1", HOUR, datetime.now(UTC))
    async with database.session() as db:
        stored = list(await db.scalars(select(AdminSessionRow.id_hash)))
    assert stored == [hashlib.sha256(session.session_id.encode()).hexdigest()]
    assert session.session_id not in stored


async def test_session_of_another_password_is_refused_and_removed(database):
    store = SessionStore(database)
    now = datetime.now(UTC)
    session = await store.create("old-password", HOUR, now)
    assert await store.find(session.session_id, "new-password", now) is None
    assert await store.find(session.session_id, "old-password", now) is None


async def test_expired_session_is_refused(database):
    store = SessionStore(database)
    now = datetime.now(UTC)
    session = await store.create("fp", HOUR, now)
    assert await store.find(session.session_id, "fp", now + HOUR) is None


async def test_unknown_or_empty_session_id_is_refused(database):
    store = SessionStore(database)
    assert await store.find("no-such-session", "fp", datetime.now(UTC)) is None
    assert await store.find("", "fp", datetime.now(UTC)) is None


async def test_deleted_session_is_gone(database):
    store = SessionStore(database)
    now = datetime.now(UTC)
    session = await store.create("fp", HOUR, now)
    await store.delete(session.session_id)
    await store.delete(session.session_id)
    assert await store.find(session.session_id, "fp", now) is None


async def test_login_clears_expired_sessions(database):
    store = SessionStore(database)
    now = datetime.now(UTC)
    await store.create("fp", HOUR, now - 2 * HOUR)
    await store.create("fp", HOUR, now)
    async with database.session() as db:
        remaining = list(await db.scalars(select(AdminSessionRow.expires_at)))
    assert remaining == [now + HOUR]


async def test_sessions_are_shared_between_stores_on_one_database(database):
    now = datetime.now(UTC)
    session = await SessionStore(database).create("fp", HOUR, now)
    assert await SessionStore(database).find(session.session_id, "fp", now) is not None
