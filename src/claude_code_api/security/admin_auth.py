"""The admin password, the keys that bind sessions and CSRF tokens to it, and login throttling.

A session lives in the database (`store/sessions.py`); what is decided here: whether a password matches,
the fingerprint a session is bound to, and how long an address that failed must wait to try again (counted
in memory, or in Redis when the gateway shares its limits there).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.exceptions import RedisError

from claude_code_api.errors import LimitStoreUnavailableError

# The __Host- prefix makes the browser refuse the cookie unless it is Secure, has Path=/ and no Domain,
# so neither a sibling subdomain nor a plain-HTTP page can plant or overwrite it.
SESSION_COOKIE = "__Host-ccapi-session"
LOGIN_COOKIE = "__Host-ccapi-login"

# Failed logins from one address: the first FREE_FAILURES cost nothing; each further one makes the
# address wait twice as long as the one before (1 s, 2 s, 4 s ... at most MAX_BACKOFF_SECONDS), and the
# count is forgotten FORGET_FAILURES_SECONDS after the last failure. An attacker gets about one guess a
# minute per address; an administrator who shares that address (behind a proxy) waits a minute at most.
FREE_FAILURES = 3
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
FORGET_FAILURES_SECONDS = 15 * 60

# Changing this label derives a different key: every session and CSRF token then becomes invalid.
_HKDF_INFO = b"claude-code-api/admin-site/v1"


def derive_admin_key(secret: bytes) -> bytes:
    """Returns the 32-byte key that admin fingerprints and CSRF tokens are computed with.

    It comes from the gateway's secret through HKDF under its own label, so it is unrelated to the key
    that encrypts OAuth tokens, yet the same on every instance that shares SECRET_KEY.
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return hkdf.derive(secret)


def password_matches(given: str, expected: str) -> bool:
    """Tells whether `given` is the admin password, in time independent of where or whether they differ."""
    # Comparing digests rather than the strings keeps the time independent of the lengths as well.
    given_digest = hashlib.sha256(given.encode("utf-8")).digest()
    expected_digest = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(given_digest, expected_digest)


def password_fingerprint(admin_key: bytes, password: str) -> str:
    """Returns the fingerprint sessions are bound to: keyed, so the table does not reveal the password."""
    return hmac.new(admin_key, b"password:" + password.encode("utf-8"), hashlib.sha256).hexdigest()


def backoff_seconds(failures: int) -> float:
    """How long an address must wait after its `failures`-th failure in a row before trying again."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0 ** min(failures - FREE_FAILURES - 1, 32))


class LoginThrottle(Protocol):
    """Slows down password guessing per client address, without locking any address out for long."""

    async def retry_after(self, address: str) -> float | None:
        """Returns the seconds until `address` may try again, or None if it may try now."""
        ...

    async def record_failure(self, address: str) -> None:
        """Counts one failed attempt from `address`, and makes it wait before the next."""
        ...

    async def record_success(self, address: str) -> None:
        """Forgets the failures of `address` once it has logged in."""
        ...


class MemoryLoginThrottle:
    """A LoginThrottle in this process's memory (without REDIS_URL), bounded to `max_addresses`."""

    def __init__(self, max_addresses: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_addresses = max_addresses
        self._clock = clock
        # address -> (failures in a row, the moment it may try again, the last failure's moment)
        self._failures: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    async def retry_after(self, address: str) -> float | None:
        entry = self._current(address)
        if entry is None:
            return None
        wait = entry[1] - self._clock()
        return wait if wait > 0 else None

    async def record_failure(self, address: str) -> None:
        now = self._clock()
        entry = self._current(address)
        failures = (entry[0] if entry else 0) + 1
        self._failures[address] = (failures, now + backoff_seconds(failures), now)
        self._failures.move_to_end(address)
        # A flood of addresses must not grow memory without bound; the least recently seen go first.
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)

    async def record_success(self, address: str) -> None:
        self._failures.pop(address, None)

    def _current(self, address: str) -> tuple[int, float, float] | None:
        entry = self._failures.get(address)
        if entry is not None and self._clock() - entry[2] >= FORGET_FAILURES_SECONDS:
            del self._failures[address]
            return None
        return entry


class RedisLoginThrottle:
    """A LoginThrottle in Redis (with REDIS_URL), so that every instance and worker counts the same
    failures: two instances do not give an attacker twice the guesses. Times are wall-clock seconds,
    which the instances share."""

    def __init__(
        self, client: aioredis.Redis, key_prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self._prefix = key_prefix
        self._clock = clock

    async def retry_after(self, address: str) -> float | None:
        try:
            until = await self.client.hget(self._key(address), "until")
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None
        if until is None:
            return None
        wait = float(until) - self._clock()
        return wait if wait > 0 else None

    async def record_failure(self, address: str) -> None:
        key = self._key(address)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, "failures", 1)
                pipe.expire(key, FORGET_FAILURES_SECONDS)
                failures, _ = await pipe.execute()
            await self.client.hset(key, "until", repr(self._clock() + backoff_seconds(int(failures))))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None

    async def record_success(self, address: str) -> None:
        try:
            await self.client.delete(self._key(address))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None

    def _key(self, address: str) -> str:
        # Hashed: a forwarded address is whatever a trusted proxy passed on, of any length.
        digest = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:32]
        return f"{self._prefix}:admin-login:{digest}"


def _unavailable(exc: BaseException) -> LimitStoreUnavailableError:
    return LimitStoreUnavailableError(
        f"Redis (REDIS_URL) does not answer: {type(exc).__name__}; logins are refused until it does."
    )
