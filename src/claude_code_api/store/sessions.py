"""SessionStore: admin logins kept in the database, so that every instance on one database shares them.

Only a SHA-256 hash of a session id is stored: a leaked table or backup opens no session. Each session
carries the fingerprint of the admin password it was opened with, so a new password ends old sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from claude_code_api.store.database import Database
from claude_code_api.store.tables import AdminSessionRow

# 32 random bytes: a session id cannot be guessed, so a fast unsalted hash is enough to store it by.
_SESSION_ID_BYTES = 32


@dataclass(frozen=True)
class AdminSession:
    """A valid admin session; `session_id` is the secret the browser's cookie holds."""

    session_id: str
    created_at: datetime
    expires_at: datetime


def utc_now() -> datetime:
    """The current time, in UTC: the clock sessions expire by."""
    return datetime.now(UTC)


class SessionStore:
    """Admin sessions in the database; `clock` tells the time they are opened and expire by."""

    def __init__(self, database: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    async def create(self, password_fingerprint: str, lifetime: timedelta) -> AdminSession:
        """Opens a session bound to the current password's fingerprint and returns it with its id."""
        now = self._clock()
        session_id = secrets.token_urlsafe(_SESSION_ID_BYTES)
        row = AdminSessionRow(
            id_hash=_hash(session_id),
            password_fingerprint=password_fingerprint,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._database.session() as session:
            # Expired rows are cleared here, at the rare moment someone logs in, rather than by a timer.
            await session.execute(delete(AdminSessionRow).where(AdminSessionRow.expires_at <= now))
            session.add(row)
        return AdminSession(session_id, row.created_at, row.expires_at)

    async def find(self, session_id: str, password_fingerprint: str) -> AdminSession | None:
        """Returns the session with this id, or None if it is unknown, expired or from another password."""
        if not session_id:
            return None
        now = self._clock()
        async with self._database.session() as session:
            row = await session.get(AdminSessionRow, _hash(session_id))
            if row is None:
                return None
            if row.expires_at <= now or not hmac.compare_digest(
                row.password_fingerprint.encode("ascii"), password_fingerprint.encode("ascii")
            ):
                await session.delete(row)
                return None
            return AdminSession(session_id, row.created_at, row.expires_at)

    async def delete(self, session_id: str) -> None:
        """Ends a session; ending an unknown one does nothing."""
        async with self._database.session() as session:
            await session.execute(delete(AdminSessionRow).where(AdminSessionRow.id_hash == _hash(session_id)))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()
