"""OAuth tokens encrypted at rest, under a key derived from the gateway's secret.

A stolen database alone then yields no usable Claude token; the secret comes from SECRET_KEY or from
DATA_DIR/secret_key, which the gateway creates readable by its owner only.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from claude_code_api.errors import SecretKeyError, TokenDecryptionError

SECRET_FILE_NAME = "secret_key"
# SECRET_KEY's own minimum; a generated secret has 43 characters.
MIN_SECRET_CHARS = 16

# Changing this label derives a different key and makes every stored token unreadable.
_HKDF_INFO = b"claude-code-api/oauth-token/v1"

logger = logging.getLogger(__name__)


class TokenCipher:
    """Encrypts and decrypts OAuth tokens with Fernet (AES-128-CBC with HMAC-SHA256)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the secret is empty")
        # HKDF turns a secret of any length and form into exactly the 32 bytes Fernet needs, and
        # the label keeps this key apart from any other that a later feature derives from it.
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
        derived = hkdf.derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, token: str) -> str:
        """Returns the token encrypted and authenticated, as URL-safe text."""
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Returns the token; raises TokenDecryptionError for another secret or damaged text."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise TokenDecryptionError() from exc


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    """Returns the configured secret, else the one in DATA_DIR/secret_key, created if absent.

    The file holds text of the same form as SECRET_KEY, so its content can be copied into
    SECRET_KEY to let further instances read the same tokens.
    """
    if configured is not None:
        # Stripped like the file's content, so that a value copied from the file with its newline
        # still derives the same key.
        secret = configured.strip()
        if not secret:
            raise SecretKeyError("SECRET_KEY is set but empty")
        return secret.encode("utf-8")

    path = secret_file_path(data_dir)
    if path.exists():
        return read_secret_file(path)

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = data_dir / f".{SECRET_FILE_NAME}.{secrets.token_hex(8)}"
    # O_EXCL with mode 0600 means the secret is never readable by others, not even for an instant.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        # link() fails if the file exists, so two instances starting at once agree on one secret
        # instead of the later one overwriting a secret the earlier one has already used.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return read_secret_file(path)


def secret_file_path(data_dir: Path) -> Path:
    """DATA_DIR/secret_key: where the gateway keeps the secret it generated."""
    return data_dir / SECRET_FILE_NAME


def read_secret_file(path: Path) -> bytes:
    """The secret in `path`; a damaged file raises SecretKeyError naming the file and what is wrong."""
    try:
        if path.stat().st_mode & 0o077:
            logger.warning("%s is readable by other users; run: chmod 600 %s", path, path)
        content = path.read_bytes()
    except OSError as exc:
        raise SecretKeyError(f"The secret file {path} cannot be read ({exc.strerror}).") from None
    restore = "restore its content from a backup, or set SECRET_KEY to the secret it held"
    try:
        secret = content.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SecretKeyError(f"The secret file {path} is damaged: it is not text; {restore}.") from None
    if not secret:
        raise SecretKeyError(f"The secret file {path} is empty; {restore}.")
    if not secret.isprintable():
        raise SecretKeyError(
            f"The secret file {path} is damaged: it holds control characters or more than one line; "
            f"{restore}."
        )
    if len(secret) < MIN_SECRET_CHARS:
        raise SecretKeyError(
            f"The secret file {path} is damaged: it holds {len(secret)} characters, fewer than "
            f"{MIN_SECRET_CHARS}; {restore}."
        )
    return secret.encode("ascii")
