"""The admin password, the keys that bind sessions and CSRF tokens to it, and login throttling.

A session lives in the database (`store/sessions.py`); what is decided here is pure: whether a password
matches, the fingerprint a session is bound to, and whether an address has failed too often to try again.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The __Host- prefix makes the browser refuse the cookie unless it is Secure, has Path=/ and no Domain,
# so neither a sibling subdomain nor a plain-HTTP page can plant or overwrite it.
SESSION_COOKIE = "__Host-ccapi-session"
LOGIN_COOKIE = "__Host-ccapi-login"

MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW_SECONDS = 15 * 60

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


class LoginThrottle(Protocol):
    """Counts failed logins per client address; a later issue shares the counts through Redis."""

    async def retry_after(self, address: str) -> float | None:
        """Returns the seconds until `address` may try again, or None if it may try now."""
        ...

    async def record_failure(self, address: str) -> None:
        """Counts one failed attempt from `address`."""
        ...

    async def record_success(self, address: str) -> None:
        """Forgets the failures of `address` once it has logged in."""
        ...


class MemoryLoginThrottle:
    """A LoginThrottle in this process's memory: after `limit` failures within `window` seconds from one
    address, that address is refused until the oldest of those failures is `window` seconds old.
    """

    def __init__(
        self,
        limit: int = MAX_FAILED_LOGINS,
        window: float = FAILED_LOGIN_WINDOW_SECONDS,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    async def retry_after(self, address: str) -> float | None:
        failures = self._recent(address)
        if len(failures) < self._limit:
            return None
        return failures[0] + self._window - self._clock()

    async def record_failure(self, address: str) -> None:
        failures = self._recent(address)
        failures.append(self._clock())
        # Only the last `limit` failures decide when the address may try again.
        while len(failures) > self._limit:
            failures.popleft()
        self._failures[address] = failures
        self._failures.move_to_end(address)
        # A flood of addresses must not grow memory without bound; the least recently seen go first.
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)

    async def record_success(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address, deque())
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(address, None)
        return failures
