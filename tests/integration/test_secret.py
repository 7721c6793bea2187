"""The secret in force against the key store: the verifier (store/verifier.py), and what `serve`,
`doctor` and `/v1/health` say when the secret is lost, replaced, damaged or another instance's."""

from __future__ import annotations

from pathlib import Path

import httpx

from claude_code_api.security.encryption import SECRET_FILE_NAME, TokenCipher
from claude_code_api.store.database import Database
from claude_code_api.store.keys import KeyStore
from claude_code_api.store.tables import StoreMetadataRow
from claude_code_api.store.verifier import VERIFIER_NAME, secret_matches
from tests.factories import FAKE_OAUTH_TOKEN, make_oauth_token
from tests.integration.gateway_harness import GatewayServer
from tests.integration.serve_harness import create_key, run_cli, serve_environment

FIRST = b"the-first-secret-of-this-store"
OTHER = b"another-secret-of-another-instance"


# --- the verifier, on SQLite and PostgreSQL --------------------------------------------------------


async def test_the_first_secret_writes_the_verifier_and_another_is_told_apart(database: Database) -> None:
    assert await secret_matches(database, TokenCipher(FIRST))
    await KeyStore(database, TokenCipher(FIRST)).create_key("k", FAKE_OAUTH_TOKEN)

    assert await secret_matches(database, TokenCipher(FIRST))
    assert not await secret_matches(database, TokenCipher(OTHER))


async def test_a_store_from_before_the_verifier_is_judged_by_its_tokens(database: Database) -> None:
    await KeyStore(database, TokenCipher(FIRST)).create_key("k", FAKE_OAUTH_TOKEN)

    assert not await secret_matches(database, TokenCipher(OTHER))
    assert await secret_matches(database, TokenCipher(FIRST))
    async with database.session() as session:
        assert await session.get(StoreMetadataRow, VERIFIER_NAME) is not None


async def test_a_store_without_active_keys_takes_a_new_secret(database: Database) -> None:
    keys = KeyStore(database, TokenCipher(FIRST))
    record, _ = await keys.create_key("k", FAKE_OAUTH_TOKEN)
    assert await secret_matches(database, TokenCipher(FIRST))
    await keys.revoke_key(record.id)

    assert await secret_matches(database, TokenCipher(OTHER))
    await KeyStore(database, TokenCipher(OTHER)).create_key("k2", FAKE_OAUTH_TOKEN)
    assert not await secret_matches(database, TokenCipher(FIRST), write=False)


# --- serve, doctor and keys with a lost or mismatched secret --------------------------------------


def test_serve_stops_with_one_line_when_the_secret_file_was_lost(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    create_key(env, "k", make_oauth_token())
    secret_file = Path(env["DATA_DIR"]) / SECRET_FILE_NAME
    secret_file.unlink()

    result = run_cli(env, "serve")

    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line and line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"The secret file {secret_file} is missing" in lines[0]
    assert "Restore the file from a backup" in lines[0]
    assert "Traceback" not in result.stderr
    # No new secret was generated in its place, to hide what was lost.
    assert not secret_file.exists()


def test_serve_stops_with_one_line_when_the_secret_file_was_replaced(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    create_key(env, "k", make_oauth_token())
    (Path(env["DATA_DIR"]) / SECRET_FILE_NAME).write_text("a-replaced-secret-of-enough-length\n")

    result = run_cli(env, "serve")

    assert result.returncode == 1
    assert "is not the one this key store's OAuth tokens were encrypted with" in result.stderr
    assert "Restore that secret" in result.stderr


def test_serve_stops_when_another_secret_key_opens_the_store(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9", SECRET_KEY=FIRST.decode())
    create_key(env, "k", make_oauth_token())

    result = run_cli({**env, "SECRET_KEY": OTHER.decode()}, "serve")

    assert result.returncode == 1
    assert "The secret in force (SECRET_KEY) is not the one" in result.stderr
    listed = run_cli({**env, "SECRET_KEY": OTHER.decode()}, "keys", "list")
    assert listed.returncode == 1
    assert "is not the one" in listed.stderr


def test_a_lost_secret_is_recovered_from_by_revoking_every_key(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    create_key(env, "k", make_oauth_token())
    key_id = run_cli(env, "keys", "list").stdout.splitlines()[1].split()[0]
    (Path(env["DATA_DIR"]) / SECRET_FILE_NAME).unlink()
    assert "is missing" in run_cli(env, "keys", "list").stderr

    assert run_cli(env, "keys", "revoke", key_id).returncode == 0

    create_key(env, "after", make_oauth_token())
    assert run_cli(env, "keys", "list").returncode == 0


def test_doctor_reports_a_mismatched_secret_instead_of_crashing(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    create_key(env, "k", make_oauth_token())
    (Path(env["DATA_DIR"]) / SECRET_FILE_NAME).write_text("a-replaced-secret-of-enough-length\n")

    for args in (["doctor"], ["doctor", "--check-tokens"]):
        result = run_cli(env, *args)

        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        secret_line = next(line for line in result.stdout.splitlines() if line.startswith("secret"))
        assert "PROBLEM" in secret_line
        assert "is not the one" in secret_line


def test_doctor_reports_a_lost_secret_file_without_creating_one(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    create_key(env, "k", make_oauth_token())
    secret_file = Path(env["DATA_DIR"]) / SECRET_FILE_NAME
    secret_file.unlink()

    result = run_cli(env, "doctor")

    assert result.returncode == 1
    assert "is missing" in result.stdout
    assert not secret_file.exists()


def test_serve_names_a_damaged_secret_file_in_one_line(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    secret_file = Path(env["DATA_DIR"]) / SECRET_FILE_NAME
    secret_file.parent.mkdir(mode=0o700)
    secret_file.write_bytes(b"\x00\xff\x80binary")
    secret_file.chmod(0o600)

    result = run_cli(env, "serve")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        f"Error: The secret file {secret_file} is damaged: it is not text; restore its content from a "
        "backup, or set SECRET_KEY to the secret it held."
    ]


# --- health of an instance already running -----------------------------------------------------------


def test_health_reports_a_secret_file_replaced_under_a_running_gateway(
    gateway_server: GatewayServer,
) -> None:
    assert _health(gateway_server) == (200, "ok", "ok")
    secret_file = gateway_server.settings.data_dir / SECRET_FILE_NAME
    secret_file.write_text("a-replaced-secret-of-enough-length\n")

    assert _health(gateway_server) == (200, "degraded", "file_changed")
    secret_file.unlink()
    assert _health(gateway_server) == (200, "degraded", "file_changed")


def test_health_reports_a_store_taken_over_by_another_secret(gateway_server: GatewayServer) -> None:
    assert gateway_server.gateway is not None
    database = gateway_server.gateway.database
    # Another instance with another secret opened the store while it had no active key, then stored
    # tokens under its secret: this instance can no longer read them.
    assert gateway_server.call(secret_matches(database, TokenCipher(OTHER)))
    gateway_server.call(KeyStore(database, TokenCipher(OTHER)).create_key("theirs", FAKE_OAUTH_TOKEN))

    assert _health(gateway_server) == (503, "degraded", "mismatch")


def _health(server: GatewayServer) -> tuple[int, str, str]:
    response = httpx.get(f"{server.base_url}/health")
    body = response.json()
    return response.status_code, body["status"], body["secret"]
