"""Tests of store/credentials.py and keys on ranked credentials, on SQLite and PostgreSQL; and of revision
0004, which moves every key's OAuth token into a subscription credential of its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import bindparam, text

from claude_code_api.errors import InvalidOAuthTokenError, InvalidRequestError, NotFoundError
from claude_code_api.security.apikeys import generate_api_key, hash_api_key, key_prefix
from claude_code_api.store.credential_kinds import CredentialInput, CredentialOptions, CredentialSecrets
from claude_code_api.store.credentials import CredentialStore
from claude_code_api.store.database import Database, alembic_config
from claude_code_api.store.tables import UTCDateTime
from tests.factories import FAKE_OAUTH_TOKEN, make_cipher, make_key_store, make_oauth_token
from tests.integration.test_store import _run_sync

CONSOLE_KEY = "sk-ant-api03-" + "a" * 80 + "wxyz"
SERVICE_ACCOUNT = json.dumps(
    {
        "type": "service_account",
        "project_id": "acme-ai",
        "private_key_id": "0123456789abcdef",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
        "client_email": "gateway@acme-ai.iam.gserviceaccount.com",
    }
)


def make_credential_store(database: Database) -> CredentialStore:
    return CredentialStore(database, make_cipher())


def console(name: str = "console", key: str = CONSOLE_KEY) -> CredentialInput:
    return CredentialInput(name=name, kind="anthropic-api-key", secrets=CredentialSecrets(api_key=key))


def subscription(name: str = "sub", token: str = FAKE_OAUTH_TOKEN) -> CredentialInput:
    return CredentialInput(name=name, kind="subscription", secrets=CredentialSecrets(oauth_token=token))


async def _dump(database_url: str, table: str) -> str:
    def dump(connection):
        return " ".join(
            str(value) for row in connection.execute(text(f"SELECT * FROM {table}")) for value in row
        )

    return await _run_sync(database_url, dump)


async def test_added_credential_is_listed_without_its_secret(database, database_url):
    store = make_credential_store(database)
    added = await store.add_credential(console())

    assert (added.name, added.kind, added.hint, added.state.state) == (
        "console",
        "anthropic-api-key",
        "wxyz",
        "ok",
    )
    assert await store.list_credentials() == [added]
    for shown in (repr(added), str(added), repr(await store.upstream_credential("console"))):
        assert CONSOLE_KEY not in shown
        assert "aaaa" not in shown
    stored = await _dump(database_url, "credentials")
    assert CONSOLE_KEY not in stored
    assert "sk-ant" not in stored


async def test_every_kind_keeps_its_secrets_and_options(database):
    store = make_credential_store(database)
    await store.add_credential(
        CredentialInput(
            name="bedrock-keys",
            kind="bedrock",
            secrets=CredentialSecrets(
                access_key_id="AKIAEXAMPLE", secret_access_key="secret/1234", session_token="session"
            ),
            options=CredentialOptions(region="us-east-1"),
        )
    )
    await store.add_credential(
        CredentialInput(
            name="vertex",
            kind="vertex",
            secrets=CredentialSecrets(google_credentials=SERVICE_ACCOUNT),
            options=CredentialOptions(region="us-east5"),
        )
    )

    bedrock = await store.upstream_credential("bedrock-keys")
    assert bedrock.secrets == CredentialSecrets(
        access_key_id="AKIAEXAMPLE", secret_access_key="secret/1234", session_token="session"
    )
    assert bedrock.credential.hint == "1234"
    # What a Claude process runs on: the same secrets and options, named.
    upstream = bedrock.upstream()
    assert (upstream.name, upstream.kind, upstream.region) == ("bedrock-keys", "bedrock", "us-east-1")
    assert (upstream.access_key_id, upstream.secret_access_key, upstream.session_token) == (
        "AKIAEXAMPLE",
        "secret/1234",
        "session",
    )
    vertex = await store.upstream_credential("vertex")
    assert vertex.secrets.google_credentials == SERVICE_ACCOUNT
    # The project comes from the service account's file when not given.
    assert (vertex.credential.options.project, vertex.credential.hint) == ("acme-ai", "cdef")


async def test_duplicate_name_is_refused_and_nothing_is_stored(database):
    store = make_credential_store(database)
    await store.add_credential(console())
    with pytest.raises(InvalidRequestError, match="exists already") as refused:
        await store.add_credential(subscription(name="console"))
    assert refused.value.param == "name"
    assert [c.kind for c in await store.list_credentials()] == ["anthropic-api-key"]


async def test_bad_input_stores_nothing(database):
    store = make_credential_store(database)
    with pytest.raises(InvalidRequestError, match="needs --region"):
        await store.add_credential(
            CredentialInput(name="b", kind="bedrock", secrets=CredentialSecrets(api_key="bedrock-key"))
        )
    with pytest.raises(InvalidRequestError, match="Unknown credential kind 'openai'"):
        await store.add_credential(
            CredentialInput(name="o", kind="openai", secrets=CredentialSecrets(api_key="x"))
        )
    assert await store.list_credentials() == []


async def test_rename_keeps_the_keys_that_rank_it(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    await credentials.add_credential(console())
    record, full_key = await keys.create_key("team", credentials=[["console"]])

    renamed = await credentials.rename_credential("console", "console-eu")

    assert renamed.name == "console-eu"
    assert (await keys.get_key(record.id)).credential_ranks == (("console-eu",),)
    found = await keys.identify(full_key)
    assert found is not None
    assert found.ranks[0][0].name == "console-eu"
    await credentials.add_credential(console("other"))
    with pytest.raises(InvalidRequestError, match="exists already"):
        await credentials.rename_credential("other", "console-eu")
    with pytest.raises(NotFoundError):
        await credentials.rename_credential("absent", "x")


async def test_remove_is_refused_while_an_unrevoked_key_needs_it(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    await credentials.add_credential(console())
    record, _ = await keys.create_key("team", credentials=[["console"]])

    with pytest.raises(InvalidRequestError, match=f"used by key\\(s\\) {record.id} \\(team\\)"):
        await credentials.remove_credential("console")
    assert await credentials.key_counts() == {(await credentials.get_credential("console")).id: 1}

    await keys.revoke_key(record.id)
    removed = await credentials.remove_credential("console")
    assert removed.name == "console"
    assert await credentials.list_credentials() == []
    assert (await keys.get_key(record.id)).credential_ranks == ()


async def test_key_on_ranked_credentials_identifies_with_them_decrypted(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    token = make_oauth_token()
    await credentials.add_credential(subscription("a", token))
    await credentials.add_credential(console("b"))
    await credentials.add_credential(console("c", "sk-ant-api03-" + "c" * 40))

    record, full_key = await keys.create_key("team", credentials=[["b", "a"], ["c"]])

    assert record.credential_ranks == (("a", "b"), ("c",))
    found = await keys.identify(full_key)
    assert found is not None
    assert found.key == record
    assert [[c.name for c in rank] for rank in found.ranks] == [["a", "b"], ["c"]]
    assert found.ranks[0][1].secrets.api_key == CONSOLE_KEY
    # As Claude Code processes run on them: named, in the same ranks.
    assert [[(c.name, c.kind) for c in rank] for rank in found.upstream_ranks] == [
        [("a", "subscription"), ("b", "anthropic-api-key")],
        [("c", "anthropic-api-key")],
    ]
    assert found.upstream_ranks[0][0].secret == token
    assert token not in repr(found)
    assert CONSOLE_KEY not in repr(found)


async def test_a_rank_naming_an_unknown_credential_stores_no_key(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    await credentials.add_credential(console())
    with pytest.raises(InvalidRequestError, match="No credential named 'nope'") as refused:
        await keys.create_key("team", credentials=[["console"], ["nope"]])
    assert refused.value.param == "credentials"
    assert await keys.list_keys() == []


async def test_a_key_needs_a_token_or_credentials_but_not_both(database):
    keys = make_key_store(database)
    with pytest.raises(InvalidRequestError, match="either"):
        await keys.create_key("team")
    with pytest.raises(InvalidRequestError, match="either"):
        await keys.create_key("team", FAKE_OAUTH_TOKEN, credentials=[["x"]])
    with pytest.raises(InvalidRequestError, match="ranked twice"):
        await keys.create_key("team", credentials=[["x"], ["x"]])


async def test_oauth_token_makes_a_subscription_credential_named_after_the_key(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    record, full_key = await keys.create_key("laptop", FAKE_OAUTH_TOKEN)

    own = await credentials.get_credential(f"{record.id}-subscription")
    assert own is not None
    assert (own.kind, own.hint, own.options.allow_extra_usage) == (
        "subscription",
        FAKE_OAUTH_TOKEN[-4:],
        False,
    )
    assert record.credential_ranks == ((own.name,),)
    found = await keys.authenticate(full_key)
    assert found is not None
    assert found.upstream_ranks[0][0].secret == FAKE_OAUTH_TOKEN


async def test_a_bad_oauth_token_stores_no_credential(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    with pytest.raises(InvalidOAuthTokenError):
        await keys.create_key("laptop", "sk-ant-api03-not-a-token")
    assert await credentials.list_credentials() == []


async def test_update_replaces_the_ranks_and_is_seen_at_once(database):
    credentials, keys = make_credential_store(database), make_key_store(database)
    keys = type(keys)(database, make_cipher(), cache_seconds=60)
    await credentials.add_credential(subscription("a"))
    await credentials.add_credential(console("b"))
    record, full_key = await keys.create_key("team", credentials=[["a"]])
    assert (await keys.identify(full_key)).key.credential_ranks == (("a",),)

    updated = await keys.update_key(record.id, credentials=[["b"], ["a"]])

    assert updated is not None
    assert updated.credential_ranks == (("b",), ("a",))
    assert (await keys.identify(full_key)).key.credential_ranks == (("b",), ("a",))
    with pytest.raises(InvalidRequestError, match="No credential named 'zzz'"):
        await keys.update_key(record.id, credentials=[["zzz"]])
    assert (await keys.get_key(record.id)).credential_ranks == (("b",), ("a",))


async def test_state_is_recorded(database):
    store = make_credential_store(database)
    await store.add_credential(subscription())
    changed = await store.set_state("sub", "broken", reason="401 from upstream")
    assert (changed.state.state, changed.state.reason) == ("broken", "401 from upstream")


# --- revision 0004 ------------------------------------------------------------------------


async def test_migration_moves_each_keys_token_into_a_subscription_credential(empty_database, database_url):
    cipher = make_cipher()
    full_key = generate_api_key()

    def to_0002_with_a_key(connection):
        command.upgrade(alembic_config(connection), "0003")
        connection.execute(
            text(
                "INSERT INTO api_keys (id, name, key_hash, key_prefix, oauth_token_encrypted, created_at) "
                "VALUES ('key_old000000001', 'old laptop', :hash, :prefix, :token, :created)"
            ).bindparams(bindparam("created", type_=UTCDateTime())),
            {
                "hash": hash_api_key(full_key),
                "prefix": key_prefix(full_key),
                "token": cipher.encrypt(FAKE_OAUTH_TOKEN),
                "created": datetime(2025, 3, 1, 10, tzinfo=UTC),
            },
        )

    await _run_sync(database_url, to_0002_with_a_key)
    await empty_database.upgrade()

    keys, credentials = make_key_store(empty_database), make_credential_store(empty_database)
    found = await keys.authenticate(full_key)
    assert found is not None
    assert found.upstream_ranks[0][0].secret == FAKE_OAUTH_TOKEN
    assert found.key.credential_ranks == (("key_old000000001-subscription",),)
    [migrated] = await credentials.list_credentials()
    assert (migrated.name, migrated.kind, migrated.hint) == (
        "key_old000000001-subscription",
        "subscription",
        FAKE_OAUTH_TOKEN[-4:],
    )

    def back_to_0002(connection):
        command.downgrade(alembic_config(connection), "0003")
        return connection.execute(text("SELECT oauth_token_encrypted FROM api_keys")).scalar_one()

    assert cipher.decrypt(await _run_sync(database_url, back_to_0002)) == FAKE_OAUTH_TOKEN
