"""The secret verifier: a value in the store encrypted with the secret its OAuth tokens are encrypted
with, so that a lost or mismatched secret stops the gateway at start instead of failing every request.

The first secret to open a store writes the verifier. A store from before the verifier is judged by one
of its stored tokens; a store without active keys takes the secret in force, so that an operator who
lost the secret can revoke the keys and start again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from claude_code_api.errors import SecretKeyError, TokenDecryptionError
from claude_code_api.security.encryption import (
    TokenCipher,
    load_or_create_secret,
    read_secret_file,
    secret_file_path,
)
from claude_code_api.store.database import Database
from claude_code_api.store.tables import ApiKeyRow, CredentialRow, StoreMetadataRow

VERIFIER_NAME = "secret_verifier"
_VERIFIER_TEXT = "claude-code-api secret verifier v1"

SecretState = Literal["ok", "mismatch", "file_changed"]

logger = logging.getLogger(__name__)

_ACTIVE_KEYS = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))


async def secret_matches(database: Database, cipher: TokenCipher, *, write: bool = True) -> bool:
    """Tells whether `cipher`'s secret is the one the store's tokens are encrypted with.

    Writes the verifier with that secret when the store has none yet (or has one but no active key),
    unless `write` is false (doctor only looks).
    """
    try:
        return await _check_or_write(database, cipher, write)
    except IntegrityError:
        # Another instance wrote its verifier between our read and our write: judge by that one.
        return await _check_or_write(database, cipher, write)


async def open_secret(database: Database, data_dir: Path, configured: str | None) -> bytes:
    """The secret in force (SECRET_KEY, or DATA_DIR/secret_key, generated when absent), checked against
    the store; raises SecretKeyError with what happened and what to do.

    A missing secret file is not replaced while the store holds active keys: a new secret could not
    read their tokens, and the file left behind would hide what was lost.
    """
    if configured is None:
        path = secret_file_path(data_dir)
        if not path.exists() and await active_key_count(database):
            raise SecretKeyError(
                f"The secret file {path} is missing, and the key store holds OAuth tokens encrypted with "
                "it. Restore the file from a backup (or set SECRET_KEY to the secret it held); if it is "
                "lost, revoke every key (`claude-code-api keys revoke ID`) and start again."
            )
    secret = load_or_create_secret(data_dir, configured)
    await require_matching_secret(database, TokenCipher(secret), secret_source(data_dir, configured))
    return secret


async def require_matching_secret(database: Database, cipher: TokenCipher, source: str) -> None:
    """Raises SecretKeyError, with what happened and what to do, unless the secret in force is the store's."""
    if not await secret_matches(database, cipher):
        raise SecretKeyError(mismatch_message(source))


def mismatch_message(source: str) -> str:
    """One line for an operator whose secret (from `source`) does not decrypt the store's tokens."""
    return (
        f"The secret in force ({source}) is not the one this key store's OAuth tokens were encrypted "
        "with, so no API key would work. Restore that secret (every instance on a shared database needs "
        "the same SECRET_KEY); if it is lost, revoke every key (`claude-code-api keys revoke ID`) and "
        "start again: a store without active keys takes the new secret."
    )


def secret_source(data_dir: Path, configured: str | None) -> str:
    """Where the secret in force comes from, as an operator names it."""
    return "SECRET_KEY" if configured is not None else str(secret_file_path(data_dir))


async def secret_state(
    database: Database, cipher: TokenCipher, in_force: bytes, data_dir: Path, configured: str | None
) -> SecretState:
    """How the secret of a running gateway stands: `mismatch` when the store's verifier is not its
    secret's (another instance with another secret wrote it), `file_changed` when DATA_DIR/secret_key
    no longer holds it (deleted or replaced: the next start would use another secret)."""
    if not await secret_matches(database, cipher):
        return "mismatch"
    if configured is None:
        try:
            on_disk = read_secret_file(secret_file_path(data_dir))
        except (SecretKeyError, FileNotFoundError):
            return "file_changed"
        if on_disk != in_force:
            return "file_changed"
    return "ok"


async def active_key_count(database: Database) -> int:
    """How many keys are not revoked: their tokens need the store's secret."""
    async with database.session() as session:
        return await session.scalar(_ACTIVE_KEYS) or 0


async def _check_or_write(database: Database, cipher: TokenCipher, write: bool) -> bool:
    async with database.session() as session:
        row = await session.get(StoreMetadataRow, VERIFIER_NAME)
        if row is not None and _decrypts(cipher, row.value):
            return True
        active = await session.scalar(_ACTIVE_KEYS)
        if row is not None:
            if active:
                return False
            if not write:
                return True
            logger.warning("The key store has no active keys: it now takes the secret in force")
            row.value = cipher.encrypt(_VERIFIER_TEXT)
            return True
        token = await session.scalar(select(CredentialRow.secret_encrypted).limit(1))
        if token is not None and not _decrypts(cipher, token):
            return False
        if not write:
            return True
        session.add(StoreMetadataRow(name=VERIFIER_NAME, value=cipher.encrypt(_VERIFIER_TEXT)))
        await session.flush()
    return True


def _decrypts(cipher: TokenCipher, ciphertext: str) -> bool:
    try:
        cipher.decrypt(ciphertext)
    except TokenDecryptionError:
        return False
    return True
