"""API key format, generation, hashing and constant-time checks; pure.

A key is `sk-` followed by 48 URL-safe random characters; only its SHA-256 hash and a short
visible prefix are ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

API_KEY_PREFIX = "sk-"
API_KEY_RANDOM_CHARS = 48
KEY_ID_PREFIX = "key_"
KEY_ID_RANDOM_CHARS = 12

# 36 random bytes encode to exactly 48 base64url characters, without padding: 288 bits of entropy.
_API_KEY_RANDOM_BYTES = API_KEY_RANDOM_CHARS * 3 // 4
_VISIBLE_CHARS = 8
_API_KEY_PATTERN = re.compile(rf"sk-[A-Za-z0-9_-]{{{API_KEY_RANDOM_CHARS}}}")
_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits


def generate_api_key() -> str:
    """Returns a new secret API key, e.g. `sk-` + 48 URL-safe characters."""
    return API_KEY_PREFIX + secrets.token_urlsafe(_API_KEY_RANDOM_BYTES)


def generate_key_id() -> str:
    """Returns a new public key id, e.g. `key_3f9a0c1b7d2e`; it names a key but grants nothing."""
    return KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_RANDOM_CHARS))


def hash_api_key(key: str) -> str:
    """Returns the hex SHA-256 digest under which a key is stored and looked up."""
    # A fast unsalted hash is right here: a key carries 288 random bits, so even a leaked table
    # cannot be brute-forced, and an unsalted digest lets each request find its key with one
    # indexed lookup, where bcrypt or argon2 would cost tens of milliseconds a request for no gain.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def verify_api_key(key: str, key_hash: str) -> bool:
    """Tells whether `key` hashes to `key_hash`, in time independent of where they differ."""
    return hmac.compare_digest(hash_api_key(key).encode("ascii"), key_hash.encode("ascii"))


def key_prefix(key: str) -> str:
    """Returns the part of a key that may be shown again after creation, e.g. `sk-AbCdEfGh…`."""
    if not looks_like_api_key(key):
        raise ValueError("not an API key")
    return key[: len(API_KEY_PREFIX) + _VISIBLE_CHARS] + "…"


def looks_like_api_key(value: str) -> bool:
    """Tells whether a string has the shape of one of our API keys (not whether the key exists)."""
    return _API_KEY_PATTERN.fullmatch(value) is not None
