"""Tests of store/: the database, its migrations, KeyStore and UsageStore, on SQLite and PostgreSQL.

Every test that takes `database`, `empty_database` or `database_url` runs once per backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from claude_code_api.errors import (
    InvalidOAuthTokenError,
    InvalidRequestError,
    TokenDecryptionError,
)
from claude_code_api.security.apikeys import generate_api_key, hash_api_key
from claude_code_api.store.database import (
    MIGRATIONS_DIR,
    Database,
    alembic_config,
    normalize_database_url,
)
from claude_code_api.store.keys import ApiKey, KeyStore
from claude_code_api.store.tables import ApiKeyRow, Base
from claude_code_api.store.usage import UsageBucket, UsageRecord, UsageStore, UsageTotals
from tests.factories import FAKE_OAUTH_TOKEN, FakeClock, make_cipher, make_key_store, make_oauth_token

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


_T = TypeVar("_T")


async def _run_sync(database_url: str, function: Callable[[Connection], _T]) -> _T:
    """Runs `function(connection)` on a separate engine, as an operator's tool would."""
    engine = create_async_engine(normalize_database_url(database_url))
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(function)
    finally:
        await engine.dispose()


def _revisions(connection: Connection) -> Sequence[str]:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()


async def _reload(store: KeyStore, key_id: str) -> ApiKey:
    record = await store.get_key(key_id)
    assert record is not None
    return record


# --- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("sqlite:///data/claude.db", "sqlite+aiosqlite:///data/claude.db"),
        ("sqlite:////var/lib/claude.db", "sqlite+aiosqlite:////var/lib/claude.db"),
        ("sqlite+aiosqlite:///data/claude.db", "sqlite+aiosqlite:///data/claude.db"),
        ("sqlite+pysqlite:///data/claude.db", "sqlite+aiosqlite:///data/claude.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://user@host:5432/db", "postgresql+asyncpg://user@host:5432/db"),
        ("postgres://user:pw@host/db", "postgresql+asyncpg://user:pw@host/db"),
        ("postgresql+asyncpg://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("postgresql+psycopg2://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("postgresql://h/db?sslmode=require", "postgresql+asyncpg://h/db?ssl=require"),
    ],
)
def test_normalize_database_url(url, normalized):
    assert normalize_database_url(url) == normalized


@pytest.mark.parametrize("url", ["mysql://user@host/db", "oracle://host/db", "http://host/db"])
def test_normalize_database_url_refuses_other_backends(url):
    with pytest.raises(ValueError, match="unsupported database"):
        normalize_database_url(url)


# --- Database ------------------------------------------------------------------------------------


async def test_sqlite_directory_is_created_and_wal_and_busy_timeout_are_on(tmp_path):
    database = Database.from_url(f"sqlite:///{tmp_path / 'new' / 'dir' / 'store.db'}")
    try:
        async with database.session() as session:
            assert await session.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await session.scalar(text("PRAGMA busy_timeout")) == 5_000
            assert await session.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await database.dispose()
    assert (tmp_path / "new" / "dir" / "store.db").exists()


async def test_upgrade_creates_both_tables_as_the_models_declare(database, database_url):
    def check(connection):
        assert {"api_keys", "usage_records"} <= set(inspect(connection).get_table_names())
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    assert await _run_sync(database_url, check) == []


async def test_upgrading_twice_is_a_no_op(database, database_url):
    store = make_key_store(database)
    record, full_key = await store.create_key("kept", FAKE_OAUTH_TOKEN)

    await database.upgrade()

    assert await _run_sync(database_url, _revisions) == [HEAD]
    credentials = await store.authenticate(full_key)
    assert credentials is not None
    assert credentials.key == record


async def test_concurrent_upgrades_on_an_empty_database_both_succeed(empty_database, database_url):
    other_instance = Database.from_url(database_url)
    try:
        await asyncio.gather(empty_database.upgrade(), other_instance.upgrade())
    finally:
        await other_instance.dispose()
    assert await _run_sync(database_url, _revisions) == [HEAD]


async def test_migrations_downgrade_to_nothing_and_back(database, database_url):
    def downgrade(connection):
        command.downgrade(alembic_config(connection), "base")
        return set(inspect(connection).get_table_names())

    assert await _run_sync(database_url, downgrade) == {"alembic_version"}
    await database.upgrade()
    assert await _run_sync(database_url, _revisions) == [HEAD]


async def test_session_rolls_back_when_its_block_raises(database):
    store = make_key_store(database)

    class Boom(Exception):
        pass

    async def add_then_fail() -> None:
        async with database.session() as session:
            session.add(
                ApiKeyRow(
                    id="key_rolledback01",
                    name="never",
                    key_hash=hash_api_key(generate_api_key()),
                    key_prefix="sk-x…",
                    created_at=T0,
                )
            )
            await session.flush()
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()

    assert await store.get_key("key_rolledback01") is None


async def test_ping_answers_true(database):
    assert await database.ping() is True


async def test_ping_answers_false_when_the_server_is_unreachable():
    # Only PostgreSQL: a SQLite file that cannot be opened leaves aiosqlite's worker thread finishing
    # after the test's event loop has closed, which pytest reports as an error of the next test.
    database = Database.from_url("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert await database.ping() is False
    finally:
        await database.dispose()


# --- KeyStore ------------------------------------------------------------------------------------


async def test_created_key_authenticates_with_its_token(database):
    store = make_key_store(database)
    record, full_key = await store.create_key("  laptop  ", FAKE_OAUTH_TOKEN)

    assert record.name == "laptop"
    assert record.id.startswith("key_")
    assert record.prefix == full_key[:11] + "…"
    assert record.is_active
    assert record.last_used_at is None
    assert record.revoked_at is None
    credentials = await store.authenticate(full_key)
    assert credentials is not None
    assert credentials.key == record
    assert credentials.upstream_ranks[0][0].secret == FAKE_OAUTH_TOKEN


async def test_neither_full_key_nor_token_is_stored_in_clear(database, database_url):
    store = make_key_store(database)
    _, full_key = await store.create_key("laptop", FAKE_OAUTH_TOKEN)

    def dump(connection):
        return [str(value) for row in connection.execute(text("SELECT * FROM api_keys")) for value in row]

    stored = " ".join(await _run_sync(database_url, dump))
    assert hash_api_key(full_key) in stored
    assert full_key not in stored
    assert full_key[11:] not in stored
    assert FAKE_OAUTH_TOKEN not in stored
    assert "sk-ant" not in stored


@pytest.mark.parametrize("candidate", ["", "garbage", "Bearer sk-x", "sk-ant-oat01-abc"])
async def test_malformed_key_is_refused(database, candidate):
    assert await make_key_store(database).authenticate(candidate) is None


async def test_unknown_key_is_refused(database):
    store = make_key_store(database)
    await store.create_key("laptop", FAKE_OAUTH_TOKEN)
    assert await store.authenticate(generate_api_key()) is None


async def test_revoked_key_is_refused_at_once(database):
    store = make_key_store(database)
    record, full_key = await store.create_key("laptop", FAKE_OAUTH_TOKEN)
    assert await store.authenticate(full_key) is not None

    revoked = await store.revoke_key(record.id)

    assert revoked is not None
    assert revoked.revoked_at is not None
    assert not revoked.is_active
    assert await store.authenticate(full_key) is None


async def test_key_can_be_revoked_by_its_full_key(database):
    store = make_key_store(database)
    _, kept_key = await store.create_key("kept", FAKE_OAUTH_TOKEN)
    revoked, full_key = await store.create_key("leaked", FAKE_OAUTH_TOKEN)

    result = await store.revoke_key(full_key)

    assert result is not None
    assert result.id == revoked.id
    assert await store.authenticate(full_key) is None
    assert await store.authenticate(kept_key) is not None


async def test_revoking_twice_keeps_the_first_revocation_time(database):
    store = make_key_store(database)
    record, _ = await store.create_key("laptop", FAKE_OAUTH_TOKEN)
    first = await store.revoke_key(record.id)
    second = await store.revoke_key(record.id)
    assert first is not None
    assert second == first


@pytest.mark.parametrize("unknown", ["key_doesnotexist", generate_api_key(), ""])
async def test_revoking_an_unknown_key_returns_none(database, unknown):
    assert await make_key_store(database).revoke_key(unknown) is None


async def test_expired_key_is_refused(database):
    store = make_key_store(database)
    record, full_key = await store.create_key(
        "temporary", FAKE_OAUTH_TOKEN, expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    assert await store.authenticate(full_key) is not None

    expired = await store.update_key(record.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))

    assert expired is not None
    assert not expired.is_active
    assert expired.is_active_at(datetime.now(UTC) - timedelta(minutes=1))
    assert await store.authenticate(full_key) is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "starts with 'sk-ant-oat01-'"),
        ("sk-ant-api03-S3cretTail", "starts with 'sk-ant-oat01-'"),
        ("Bearer sk-ant-oat01-S3cretTail", "starts with 'sk-ant-oat01-'"),
        ("sk-ant-oat01-", "copied whole"),
        ("sk-ant-oat01-S3cret Tail", "copied whole"),
        ("sk-ant-oat01-S3cret\nTail", "copied whole"),
    ],
)
async def test_invalid_oauth_token_is_refused_and_nothing_is_stored(database, token, message):
    store = make_key_store(database)
    with pytest.raises(InvalidOAuthTokenError, match=message) as caught:
        await store.create_key("laptop", token)
    assert caught.value.param == "oauth_token"
    assert "S3cret" not in caught.value.message
    assert await store.list_keys() == []


async def test_oauth_token_is_stored_without_surrounding_whitespace(database):
    store = make_key_store(database)
    _, full_key = await store.create_key("laptop", f"  {FAKE_OAUTH_TOKEN}\n")
    credentials = await store.authenticate(full_key)
    assert credentials is not None
    assert credentials.upstream_ranks[0][0].secret == FAKE_OAUTH_TOKEN


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_key_name_must_have_1_to_100_characters(database, name):
    store = make_key_store(database)
    with pytest.raises(InvalidRequestError, match="1 to 100 characters") as caught:
        await store.create_key(name, FAKE_OAUTH_TOKEN)
    assert caught.value.param == "name"


async def test_key_name_of_100_characters_is_kept(database):
    record, _ = await make_key_store(database).create_key("x" * 100, FAKE_OAUTH_TOKEN)
    assert record.name == "x" * 100


async def test_limits_are_stored_changed_and_lifted(database):
    store = make_key_store(database)
    expires_at = T0 + timedelta(days=3650)
    record, full_key = await store.create_key(
        "limited",
        FAKE_OAUTH_TOKEN,
        rpm_limit=60,
        concurrency_limit=2,
        allowed_models=["sonnet", "haiku"],
        expires_at=expires_at,
        budget_usd=12.5,
        budget_period="month",
    )
    assert (record.rpm_limit, record.concurrency_limit) == (60, 2)
    assert record.allowed_models == ("sonnet", "haiku")
    assert record.expires_at == expires_at
    assert (record.budget_usd, record.budget_period) == (12.5, "month")

    updated = await store.update_key(record.id, rpm_limit=10, allowed_models=None)

    assert updated is not None
    assert updated.rpm_limit == 10
    assert updated.allowed_models is None
    assert updated.concurrency_limit == 2
    assert updated.budget_usd == 12.5
    assert await store.get_key(record.id) == updated
    credentials = await store.authenticate(full_key)
    assert credentials is not None
    assert credentials.key == updated


async def test_update_without_limits_returns_the_key_unchanged(database):
    store = make_key_store(database)
    record, _ = await store.create_key("laptop", FAKE_OAUTH_TOKEN, rpm_limit=5)
    assert await store.update_key(record.id) == record


@pytest.mark.parametrize(
    ("limits", "param"),
    [
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"concurrency_limit": -1}, "concurrency_limit"),
        ({"budget_usd": -0.01}, "budget_usd"),
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at"),
        ({"budget_period": "year"}, "budget_period"),
        ({"allowed_models": []}, "allowed_models"),
        ({"allowed_models": ["sonnet", "gpt-99"]}, "allowed_models"),
    ],
)
async def test_invalid_limits_are_refused(database, limits, param):
    store = make_key_store(database)
    with pytest.raises(InvalidRequestError) as created:
        await store.create_key("laptop", FAKE_OAUTH_TOKEN, **limits)
    assert created.value.param == param
    record, _ = await store.create_key("laptop", FAKE_OAUTH_TOKEN)
    with pytest.raises(InvalidRequestError) as updated:
        await store.update_key(record.id, **limits)
    assert updated.value.param == param


async def test_updating_an_unknown_key_returns_none(database):
    assert await make_key_store(database).update_key("key_doesnotexist", rpm_limit=5) is None


async def test_keys_are_listed_newest_first_revoked_included(database):
    store = make_key_store(database)
    first, _ = await store.create_key("first", FAKE_OAUTH_TOKEN)
    second, _ = await store.create_key("second", make_oauth_token())
    revoked = await store.revoke_key(first.id)

    assert await store.list_keys() == [second, revoked]
    assert await store.get_key(second.id) == second
    assert await store.get_key("key_doesnotexist") is None


async def test_last_use_never_moves_backwards(database):
    store = make_key_store(database)
    record, _ = await store.create_key("laptop", FAKE_OAUTH_TOKEN)

    await store.mark_used(record.id, T0)
    await store.mark_used(record.id, T0 - timedelta(minutes=5))
    assert (await _reload(store, record.id)).last_used_at == T0

    await store.mark_used(record.id, T0 + timedelta(seconds=1))
    assert (await _reload(store, record.id)).last_used_at == T0 + timedelta(seconds=1)


async def test_upstream_results_record_the_token_health(database):
    store = make_key_store(database)
    record, _ = await store.create_key("laptop", FAKE_OAUTH_TOKEN)

    await store.record_upstream_result(record.id, True, when=T0)
    await store.record_upstream_result(record.id, False, "401 " + "x" * 5_000, when=T0 + timedelta(1))

    health = await _reload(store, record.id)
    assert health.last_upstream_success_at == T0
    assert health.last_upstream_error_at == T0 + timedelta(1)
    assert health.last_upstream_error == ("401 " + "x" * 5_000)[:1_000]


async def test_records_never_show_the_full_key_or_the_token(database):
    store = make_key_store(database)
    created = await store.create_key("laptop", FAKE_OAUTH_TOKEN)
    record, full_key = created
    credentials = await store.authenticate(full_key)

    for shown in (repr(record), str(record), repr(credentials), str(credentials), repr([record])):
        assert full_key not in shown
        assert full_key[11:] not in shown
        assert FAKE_OAUTH_TOKEN not in shown
        assert "sk-ant" not in shown
    assert "oauth_token" not in repr(credentials)
    assert not hasattr(record, "key_hash")
    assert not hasattr(record, "oauth_token")


async def test_timestamps_come_back_timezone_aware_in_utc(database):
    store = make_key_store(database)
    paris = datetime(2025, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    record, _ = await store.create_key("laptop", FAKE_OAUTH_TOKEN)
    await store.mark_used(record.id, paris)

    reloaded = await _reload(store, record.id)
    assert reloaded.created_at.tzinfo is UTC
    assert reloaded.last_used_at == T0
    assert reloaded.last_used_at is not None
    assert reloaded.last_used_at.tzinfo is UTC


async def test_another_secret_cannot_read_the_tokens(database):
    _, full_key = await make_key_store(database, secret=b"first secret").create_key(
        "laptop", FAKE_OAUTH_TOKEN
    )
    with pytest.raises(TokenDecryptionError, match="secret key differs"):
        await make_key_store(database, secret=b"second secret").authenticate(full_key)


# --- UsageStore ----------------------------------------------------------------------------------


def _usage(key_id: str, created_at: datetime, **fields: Any) -> UsageRecord:
    defaults: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "status": 200,
        "endpoint": "/v1/chat/completions",
    }
    return UsageRecord(key_id=key_id, created_at=created_at, **(defaults | fields))


async def test_usage_totals_add_up_per_key(database):
    keys = make_key_store(database)
    usage = UsageStore(database)
    first, _ = await keys.create_key("first", FAKE_OAUTH_TOKEN)
    second, _ = await keys.create_key("second", FAKE_OAUTH_TOKEN)
    await usage.record(
        _usage(
            first.id,
            T0,
            input_tokens=10,
            output_tokens=20,
            cache_creation_tokens=3,
            cache_read_tokens=4,
            cost_usd=0.25,
            first_token_ms=150,
            total_ms=900,
        )
    )
    await usage.record(
        _usage(first.id, T0 + timedelta(hours=2), input_tokens=1, output_tokens=2, cost_usd=0.5)
    )
    await usage.record(_usage(second.id, T0, status=502))

    assert await usage.totals_by_key() == {
        first.id: UsageTotals(
            requests=2,
            input_tokens=11,
            output_tokens=22,
            cache_creation_tokens=3,
            cache_read_tokens=4,
            cost_usd=0.75,
        ),
        second.id: UsageTotals(
            requests=1,
            input_tokens=0,
            output_tokens=0,
            cache_creation_tokens=0,
            cache_read_tokens=0,
            cost_usd=0.0,
        ),
    }
    since = await usage.totals_by_key(since=T0 + timedelta(hours=1))
    assert since == {
        first.id: UsageTotals(
            requests=1,
            input_tokens=1,
            output_tokens=2,
            cache_creation_tokens=0,
            cache_read_tokens=0,
            cost_usd=0.5,
        )
    }


async def test_usage_timeline_has_every_bucket_from_since_to_until(database):
    keys = make_key_store(database)
    usage = UsageStore(database)
    first, _ = await keys.create_key("first", FAKE_OAUTH_TOKEN)
    second, _ = await keys.create_key("second", FAKE_OAUTH_TOKEN)
    for key_id, minutes, tokens in [
        (first.id, 5, 10),
        (first.id, 55, 20),
        (second.id, 59, 100),
        (first.id, 150, 40),
        (first.id, 200, 1_000),
    ]:
        created_at = T0 + timedelta(minutes=minutes)
        await usage.record(_usage(key_id, created_at, input_tokens=tokens, output_tokens=1))

    hour = timedelta(hours=1)
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=160)

    assert await usage.timeline(first.id, hour, since, until) == [
        UsageBucket(start=T0, requests=2, input_tokens=30, output_tokens=2),
        UsageBucket(start=T0 + hour, requests=0, input_tokens=0, output_tokens=0),
        UsageBucket(start=T0 + 2 * hour, requests=1, input_tokens=40, output_tokens=1),
    ]
    everyone = await usage.timeline(None, hour, since, until)
    assert [bucket.requests for bucket in everyone] == [3, 0, 1]
    assert everyone[0].input_tokens == 130


@pytest.mark.parametrize(
    ("bucket", "since", "message"),
    [
        (timedelta(0), T0, "positive"),
        (timedelta(seconds=-1), T0, "positive"),
        (timedelta(seconds=1), T0 - timedelta(days=1), "at most 10000 buckets"),
    ],
)
async def test_usage_timeline_refuses_bad_buckets(database, bucket, since, message):
    with pytest.raises(ValueError, match=message):
        await UsageStore(database).timeline(None, bucket, since, T0)


async def test_usage_of_an_unknown_key_is_refused(database):
    with pytest.raises(IntegrityError):
        await UsageStore(database).record(_usage("key_doesnotexist", T0))


async def test_records_are_frozen(database):
    record, _ = await make_key_store(database).create_key("laptop", FAKE_OAUTH_TOKEN)
    assert isinstance(record, ApiKey)
    with pytest.raises(AttributeError):
        record.name = "changed"  # type: ignore[misc]


# --- what the limits need: expired keys told apart, a lookup cache, spend per period ---


async def test_identify_returns_an_expired_key_that_authenticate_refuses(database):
    store = make_key_store(database)
    expires_at = datetime.now(UTC) - timedelta(seconds=1)
    record, full_key = await store.create_key("old", FAKE_OAUTH_TOKEN, expires_at=expires_at)
    credentials = await store.identify(full_key)
    assert credentials is not None
    assert credentials.key == record
    assert await store.authenticate(full_key) is None
    await store.revoke_key(record.id)
    assert await store.identify(full_key) is None


async def test_a_cached_lookup_is_forgotten_at_once_when_the_key_changes_here(database):
    here = KeyStore(database, make_cipher(), cache_seconds=60)
    elsewhere = make_key_store(database)
    record, full_key = await here.create_key("laptop", FAKE_OAUTH_TOKEN)
    assert await here.authenticate(full_key) is not None

    await elsewhere.update_key(record.id, rpm_limit=5)
    cached = await here.authenticate(full_key)
    assert cached is not None
    assert cached.key.rpm_limit is None
    await here.update_key(record.id, rpm_limit=7)
    changed = await here.authenticate(full_key)
    assert changed is not None
    assert changed.key.rpm_limit == 7

    await elsewhere.revoke_key(record.id)
    assert await here.authenticate(full_key) is not None
    await here.revoke_key(record.id)
    assert await here.authenticate(full_key) is None


async def test_a_cached_lookup_lasts_cache_seconds_at_most(database):
    clock = FakeClock()
    here = KeyStore(database, make_cipher(), cache_seconds=1.0, clock=clock)
    record, full_key = await here.create_key("laptop", FAKE_OAUTH_TOKEN)
    assert await here.authenticate(full_key) is not None
    await make_key_store(database).revoke_key(record.id)
    clock.advance(0.99)
    assert await here.authenticate(full_key) is not None
    clock.advance(0.01)
    assert await here.authenticate(full_key) is None


async def test_cost_since_sums_one_keys_cost_from_a_time_on(database):
    keys = make_key_store(database)
    first, _ = await keys.create_key("first", FAKE_OAUTH_TOKEN)
    second, _ = await keys.create_key("second", FAKE_OAUTH_TOKEN)
    usage = UsageStore(database)
    for key_id, created_at, cost in [
        (first.id, T0 - timedelta(days=1), 1.0),
        (first.id, T0, 0.25),
        (first.id, T0 + timedelta(hours=1), 0.5),
        (second.id, T0, 8.0),
    ]:
        await usage.record(_usage(key_id, created_at, cost_usd=cost))
    assert await usage.cost_since(first.id, T0) == pytest.approx(0.75)
    assert await usage.cost_since(first.id, None) == pytest.approx(1.75)
    assert await usage.cost_since(first.id, T0 + timedelta(days=1)) == 0.0
    assert await usage.cost_since("key_unknown", None) == 0.0
