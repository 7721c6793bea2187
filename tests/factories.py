"""Factories shared by the test suites: build real objects with valid defaults, one call each."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from claude_code_api.security.encryption import TokenCipher
from claude_code_api.store.database import Database
from claude_code_api.store.keys import ApiKey, KeyStore

# --- time ---------------------------------------------------------------------------------------


@dataclass
class FakeClock:
    """A clock the test moves by hand, for code that waits or expires: `clock()` is seconds (for a
    monotonic clock), `clock.now()` the same moment as a UTC datetime (for a wall clock)."""

    seconds: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Moves the clock on by `seconds`, or by a timedelta's keywords (`hours=1`)."""
        self.seconds += seconds + timedelta(**delta).total_seconds()


# --- key store ----------------------------------------------------------------------------------

FAKE_OAUTH_TOKEN = "sk-ant-oat01-" + secrets.token_urlsafe(72)
TEST_SECRET = b"test-secret-not-for-production"


def make_oauth_token() -> str:
    """Returns a fresh token with the shape of a Claude OAuth token."""
    return "sk-ant-oat01-" + secrets.token_urlsafe(72)


def make_cipher(secret: bytes = TEST_SECRET) -> TokenCipher:
    return TokenCipher(secret)


def make_key_store(database: Database, secret: bytes = TEST_SECRET) -> KeyStore:
    return KeyStore(database, make_cipher(secret))


def make_api_key(**overrides: Any) -> ApiKey:
    """Returns a key record with no limits, made now; `overrides` set its fields."""
    values: dict[str, Any] = {
        "id": f"key_{secrets.token_hex(6)}",
        "name": "test",
        "prefix": "sk-test",
        "created_at": datetime.now(UTC),
        "last_used_at": None,
        "revoked_at": None,
        "rpm_limit": None,
        "concurrency_limit": None,
        "allowed_models": None,
        "expires_at": None,
        "budget_usd": None,
        "budget_period": None,
        "last_upstream_success_at": None,
        "last_upstream_error_at": None,
        "last_upstream_error": None,
    }
    values.update(overrides)
    return ApiKey(**values)
