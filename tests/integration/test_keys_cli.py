"""`keys create`, `keys update` and `keys list` with per-key limits, on a SQLite file in DATA_DIR."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from claude_code_api.cli import main
from claude_code_api.config import load_settings
from claude_code_api.security.encryption import TokenCipher, load_or_create_secret
from claude_code_api.store.database import Database
from claude_code_api.store.keys import ApiKey, KeyStore
from tests.factories import FAKE_OAUTH_TOKEN


def run(args: list[str], data_dir: Path) -> Result:
    env = {"DATA_DIR": str(data_dir), "DATABASE_URL": "", "SECRET_KEY": "", "CLAUDE_CODE_OAUTH_TOKEN": ""}
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def create(data_dir: Path, *options: str) -> tuple[str, Result]:
    result = run(["keys", "create", "--name", "cli", "--oauth-token", FAKE_OAUTH_TOKEN, *options], data_dir)
    assert result.exit_code == 0, result.output
    key_id = re.search(r"Created key (key_\w+)", result.output)
    assert key_id is not None
    return key_id.group(1), result


@contextlib.asynccontextmanager
async def key_store(data_dir: Path) -> AsyncIterator[KeyStore]:
    """The key store the commands above used: the SQLite file and secret in `data_dir`."""
    settings = load_settings(data_dir=data_dir, database_url="")
    database = Database.from_url(settings.resolved_database_url)
    try:
        yield KeyStore(database, TokenCipher(load_or_create_secret(data_dir, None)))
    finally:
        await database.dispose()


def stored(data_dir: Path, key_id: str) -> ApiKey:
    async def read() -> ApiKey | None:
        async with key_store(data_dir) as store:
            return await store.get_key(key_id)

    record = asyncio.run(read())
    assert record is not None
    return record


def test_create_sets_every_limit_and_still_prints_the_key_last(tmp_path):
    key_id, result = create(
        tmp_path,
        "--rpm",
        "60",
        "--concurrency",
        "2",
        "--models",
        "sonnet, gpt-4",
        "--expires",
        "2099-12-31",
        "--budget-usd",
        "12.50",
        "--budget-period",
        "month",
    )
    record = stored(tmp_path, key_id)
    assert (record.rpm_limit, record.concurrency_limit) == (60, 2)
    assert record.allowed_models == ("sonnet", "gpt-4")
    assert record.expires_at == datetime(2099, 12, 31, tzinfo=UTC)
    assert (record.budget_usd, record.budget_period) == (12.5, "month")
    assert "60 requests per minute; 2 at once; models sonnet, gpt-4" in result.output
    assert "expires 2099-12-31 00:00 UTC; budget $12.50 per month" in result.output
    assert result.output.strip().splitlines()[-1].startswith("sk-")


def test_create_without_limits_says_so(tmp_path):
    key_id, result = create(tmp_path)
    assert "Limits: none" in result.output
    assert stored(tmp_path, key_id).rpm_limit is None


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_expires_takes_a_duration_from_now(tmp_path, expires, expected):
    before = datetime.now(UTC)
    key_id, _ = create(tmp_path, "--expires", expires)
    expires_at = stored(tmp_path, key_id).expires_at
    assert expires_at is not None
    assert before + expected <= expires_at <= datetime.now(UTC) + expected


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("2099-06-01T18:30", datetime(2099, 6, 1, 18, 30, tzinfo=UTC)),
        ("2099-06-01T18:30+02:00", datetime(2099, 6, 1, 16, 30, tzinfo=UTC)),
    ],
)
def test_expires_takes_a_date_and_time_in_utc_unless_it_has_an_offset(tmp_path, expires, expected):
    key_id, _ = create(tmp_path, "--expires", expires)
    assert stored(tmp_path, key_id).expires_at == expected


def test_update_changes_only_the_limits_given_and_none_lifts_them(tmp_path):
    key_id, _ = create(tmp_path, "--rpm", "60", "--concurrency", "2", "--models", "haiku")
    result = run(
        ["keys", "update", key_id, "--rpm", "none", "--models", "all", "--budget-usd", "5"], tmp_path
    )
    assert result.exit_code == 0, result.output
    record = stored(tmp_path, key_id)
    assert record.rpm_limit is None
    assert record.allowed_models is None
    assert record.concurrency_limit == 2
    assert (record.budget_usd, record.budget_period) == (5.0, None)
    assert f"Updated key {key_id} (cli). Limits: 2 at once; budget $5.00." in result.output

    result = run(["keys", "update", key_id, "--expires", "1d", "--budget-period", "week"], tmp_path)
    assert result.exit_code == 0, result.output
    assert stored(tmp_path, key_id).budget_period == "week"
    result = run(["keys", "update", key_id, "--expires", "none", "--budget-period", "none"], tmp_path)
    assert result.exit_code == 0, result.output
    record = stored(tmp_path, key_id)
    assert (record.expires_at, record.budget_period) == (None, None)


def test_update_without_options_changes_nothing_and_says_so(tmp_path):
    key_id, _ = create(tmp_path, "--rpm", "60")
    result = run(["keys", "update", key_id], tmp_path)
    assert result.exit_code == 1
    assert "Nothing to change" in result.output
    assert stored(tmp_path, key_id).rpm_limit == 60


def test_update_of_an_unknown_key_fails(tmp_path):
    create(tmp_path)
    result = run(["keys", "update", "key_doesnotexist", "--rpm", "5"], tmp_path)
    assert result.exit_code == 1
    assert "No key with id key_doesnotexist" in result.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--rpm", "0", "at least 1"),
        ("--rpm", "many", "at least 1"),
        ("--concurrency", "1.5", "at least 1"),
        ("--budget-usd", "-1", "US dollars"),
        ("--budget-usd", "nan", "US dollars"),
        ("--budget-period", "year", "'year' is not one of"),
        ("--expires", "tomorrow", "a duration from now"),
        ("--expires", "2001-01-01", "is in the past"),
        ("--models", " , ", "model names separated by commas"),
    ],
)
def test_bad_limit_values_are_refused_naming_the_option(tmp_path, option, value, message):
    result = run(
        ["keys", "create", "--name", "cli", "--oauth-token", FAKE_OAUTH_TOKEN, option, value], tmp_path
    )
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output
    assert message in result.output


def test_a_model_the_gateway_does_not_serve_is_refused(tmp_path):
    result = run(
        ["keys", "create", "--name", "cli", "--oauth-token", FAKE_OAUTH_TOKEN, "--models", "sonnet,gpt-99"],
        tmp_path,
    )
    assert result.exit_code == 1
    assert "'gpt-99'" in result.output


def test_list_tells_expired_keys_from_revoked_ones(tmp_path):
    active, _ = create(tmp_path)
    expired, _ = create(tmp_path, "--expires", "1d")
    revoked, _ = create(tmp_path)

    async def expire() -> None:
        async with key_store(tmp_path) as store:
            await store.update_key(expired, expires_at=datetime.now(UTC) - timedelta(days=1))

    asyncio.run(expire())
    assert run(["keys", "revoke", revoked], tmp_path).exit_code == 0
    header, *rows = run(["keys", "list"], tmp_path).output.strip().splitlines()
    column = header.index("STATUS")  # the table's columns are aligned
    status = {row.split()[0]: row[column:].split()[0] for row in rows if row.startswith("key_")}
    assert status == {active: "active", expired: "expired", revoked: "revoked"}
