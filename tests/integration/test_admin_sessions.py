"""SessionStore on SQLite and PostgreSQL: admin sessions by hashed id, bound to the password, expiring
by the store's clock."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from claude_code_api.store.sessions import SessionStore
from claude_code_api.store.tables import AdminSessionRow
from tests.factories import FakeClock

HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database, clock: FakeClock) -> SessionStore:
    return SessionStore(database, clock.now)


async def test_created_session_is_found_with_the_same_fingerprint(store, clock):
    session = await store.create("fp-1", HOUR)
    found = await store.find(session.session_id, "fp-1")
    assert found is not None
    assert found.created_at == clock.now()
    assert found.expires_at == session.expires_at
    assert found.expires_at - found.created_at == HOUR


async def test_only_a_hash_of_the_session_id_is_stored(store, database):
    session = await store.create("fp-1", HOUR)
    async with database.session() as db:
        stored = list(await db.scalars(select(AdminSessionRow.id_hash)))
    assert stored == [hashlib.sha256(session.session_id.encode()).hexdigest()]
    assert session.session_id not in stored


async def test_session_of_another_password_is_refused_and_removed(store):
    session = await store.create("old-password", HOUR)
    assert await store.find(session.session_id, "new-password") is None
    assert await store.find(session.session_id, "old-password") is None


async def test_session_is_valid_until_it_expires(store, clock):
    session = await store.create("fp", HOUR)
    clock.advance(HOUR.total_seconds() - 1)
    assert await store.find(session.session_id, "fp") is not None
    clock.advance(1)
    assert await store.find(session.session_id, "fp") is None


async def test_unknown_or_empty_session_id_is_refused(store):
    assert await store.find("no-such-session", "fp") is None
    assert await store.find("", "fp") is None


async def test_deleted_session_is_gone(store):
    session = await store.create("fp", HOUR)
    await store.delete(session.session_id)
    await store.delete(session.session_id)
    assert await store.find(session.session_id, "fp") is None


async def test_login_clears_expired_sessions(store, clock, database):
    await store.create("fp", HOUR)
    clock.advance(hours=2)
    await store.create("fp", HOUR)
    async with database.session() as db:
        remaining = list(await db.scalars(select(AdminSessionRow.expires_at)))
    assert [moment.replace(tzinfo=None) for moment in remaining] == [
        (clock.now() + HOUR).replace(tzinfo=None)
    ]


async def test_sessions_are_shared_between_stores_on_one_database(database, clock):
    session = await SessionStore(database, clock.now).create("fp", HOUR)
    assert await SessionStore(database, clock.now).find(session.session_id, "fp") is not None
