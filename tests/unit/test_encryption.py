"""Tests of security/encryption.py: token encryption and the secret it derives its key from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from claude_code_api.errors import SecretKeyError, TokenDecryptionError
from claude_code_api.security.encryption import (
    SECRET_FILE_NAME,
    TokenCipher,
    load_or_create_secret,
)
from tests.factories import FAKE_OAUTH_TOKEN


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- TokenCipher ---------------------------------------------------------------------------------


def test_token_round_trips():
    cipher = TokenCipher(b"one secret")
    assert cipher.decrypt(cipher.encrypt(FAKE_OAUTH_TOKEN)) == FAKE_OAUTH_TOKEN


def test_ciphertext_hides_the_token_and_differs_each_time():
    cipher = TokenCipher(b"one secret")
    first, second = cipher.encrypt(FAKE_OAUTH_TOKEN), cipher.encrypt(FAKE_OAUTH_TOKEN)
    assert first != second
    assert FAKE_OAUTH_TOKEN not in first
    assert "sk-ant" not in first


def test_another_instance_with_the_same_secret_decrypts():
    ciphertext = TokenCipher(b"one secret").encrypt(FAKE_OAUTH_TOKEN)
    assert TokenCipher(b"one secret").decrypt(ciphertext) == FAKE_OAUTH_TOKEN


def test_wrong_secret_fails_to_decrypt_clearly():
    ciphertext = TokenCipher(b"one secret").encrypt(FAKE_OAUTH_TOKEN)
    with pytest.raises(TokenDecryptionError, match="secret key differs") as caught:
        TokenCipher(b"another secret").decrypt(ciphertext)
    assert caught.value.status == 500
    assert caught.value.headers() == {"x-should-retry": "false"}


@pytest.mark.parametrize("damaged", ["", "not a fernet token", "gAAAAA", "é"])
def test_damaged_ciphertext_fails_to_decrypt_clearly(damaged):
    with pytest.raises(TokenDecryptionError):
        TokenCipher(b"one secret").decrypt(damaged)


def test_empty_secret_is_refused():
    with pytest.raises(ValueError, match="empty"):
        TokenCipher(b"")


# --- load_or_create_secret -----------------------------------------------------------------------


def test_configured_secret_wins_and_no_file_is_written(tmp_path):
    assert load_or_create_secret(tmp_path, "configured-secret-value") == b"configured-secret-value"
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_configured_secret_is_stripped(tmp_path):
    assert load_or_create_secret(tmp_path, " configured-secret-value\n") == b"configured-secret-value"


def test_blank_configured_secret_is_refused(tmp_path):
    with pytest.raises(SecretKeyError, match="SECRET_KEY is set but empty"):
        load_or_create_secret(tmp_path, "  ")


def test_secret_is_generated_owner_only_in_a_new_owner_only_directory(tmp_path):
    data_dir = tmp_path / "data" / "nested"
    secret = load_or_create_secret(data_dir, None)
    assert len(secret) >= 32
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / SECRET_FILE_NAME) == 0o600
    assert [path.name for path in data_dir.iterdir()] == [SECRET_FILE_NAME]


def test_generated_secret_is_reused(tmp_path):
    assert load_or_create_secret(tmp_path, None) == load_or_create_secret(tmp_path, None)


def test_existing_directory_keeps_its_permissions(tmp_path):
    tmp_path.chmod(0o750)
    load_or_create_secret(tmp_path, None)
    assert _mode(tmp_path) == 0o750


def test_secret_file_content_works_as_secret_key(tmp_path):
    from_file = load_or_create_secret(tmp_path, None)
    copied = (tmp_path / SECRET_FILE_NAME).read_text()
    ciphertext = TokenCipher(from_file).encrypt(FAKE_OAUTH_TOKEN)
    configured = load_or_create_secret(tmp_path / "elsewhere", copied)
    assert TokenCipher(configured).decrypt(ciphertext) == FAKE_OAUTH_TOKEN


def test_existing_secret_file_is_read(tmp_path):
    (tmp_path / SECRET_FILE_NAME).write_text("an-operator-chosen-secret\n")
    assert load_or_create_secret(tmp_path, None) == b"an-operator-chosen-secret"


def test_secret_file_readable_by_others_is_reported(tmp_path, caplog):
    path = tmp_path / SECRET_FILE_NAME
    path.write_text("an-operator-chosen-secret\n")
    path.chmod(0o644)
    load_or_create_secret(tmp_path, None)
    assert "chmod 600" in caplog.text
    assert "an-operator-chosen-secret" not in caplog.text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\n", "is empty"),
        (b"\x00\xff\xfe binary \x80", "is damaged: it is not text"),
        (b"short\n", "holds 5 characters, fewer than 16"),
        (b"first-line-of-the-secret\nsecond-line\n", "more than one line"),
    ],
)
def test_damaged_secret_file_is_named_with_its_problem(tmp_path, content, problem):
    path = tmp_path / SECRET_FILE_NAME
    path.write_bytes(content)
    with pytest.raises(SecretKeyError, match=problem) as caught:
        load_or_create_secret(tmp_path, None)
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message
