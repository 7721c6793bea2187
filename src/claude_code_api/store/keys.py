"""KeyStore: creates, authenticates, lists, updates and revokes API keys; returns records, not rows.

A key runs on upstream credentials in ranks (store/credentials.py), whose secrets are stored encrypted;
the full API key is returned once and only its hash kept.
Successful lookups may be cached in this process for `cache_seconds` (the gateway uses one second): a
key revoked or changed here is forgotten at once, one revoked by another instance within that time.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict, Unpack

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from claude_code_api import catalog
from claude_code_api.errors import InvalidRequestError, ModelNotFoundError
from claude_code_api.security.apikeys import (
    generate_api_key,
    generate_key_id,
    hash_api_key,
    key_prefix,
    looks_like_api_key,
    verify_api_key,
)
from claude_code_api.security.encryption import TokenCipher
from claude_code_api.store.credential_kinds import (
    CredentialOptions,
    CredentialSecrets,
    ValidCredential,
    validate_oauth_token,
)
from claude_code_api.store.credentials import (
    CredentialStore,
    StoredCredential,
    decrypt_credential,
    new_credential_row,
)
from claude_code_api.store.database import Database
from claude_code_api.store.tables import ApiKeyRow, CredentialRow, KeyCredentialRow
from claude_code_api.upstream import UpstreamCredential

# `keys create --oauth-token` and revision 0004 name a key's own subscription so.
KEY_SUBSCRIPTION_SUFFIX = "-subscription"
NAME_MAX_CHARS = 100
UPSTREAM_ERROR_MAX_CHARS = 1_000
BUDGET_PERIODS = ("day", "week", "month")
# Revocation on another instance takes effect within this time; see the module docstring.
KEY_CACHE_SECONDS = 1.0
_KEY_CACHE_MAX_ENTRIES = 10_000


class KeyLimits(TypedDict, total=False):
    """Per-key limits; one left out stays as it is (unset at creation), one set to None is lifted.

    `authenticate` refuses a key past `expires_at` (`identify` returns it, so that the API can say it
    expired); security/ratelimit.py enforces the others. `allowed_models` holds names the catalog
    serves; `budget_period` is one of BUDGET_PERIODS, or None for a budget over all time.
    """

    rpm_limit: int | None
    concurrency_limit: int | None
    allowed_models: list[str] | None
    expires_at: datetime | None
    budget_usd: float | None
    budget_period: str | None


@dataclass(frozen=True)
class ApiKey:
    """What may be known about a key after its creation: never its hash, never its OAuth token."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    rpm_limit: int | None
    concurrency_limit: int | None
    allowed_models: tuple[str, ...] | None
    expires_at: datetime | None
    budget_usd: float | None
    budget_period: str | None
    last_upstream_success_at: datetime | None
    last_upstream_error_at: datetime | None
    last_upstream_error: str | None
    # The names of the key's credentials, best rank first; names of one rank in name order.
    credential_ranks: tuple[tuple[str, ...], ...] = ()

    @property
    def token_health(self) -> TokenHealth:
        """How the key's OAuth token fared upstream last."""
        return token_health(self)

    @property
    def is_active(self) -> bool:
        """Tells whether the key is usable now: not revoked and not expired."""
        return self.is_active_at(datetime.now(UTC))

    def is_active_at(self, when: datetime) -> bool:
        """Tells whether the key was, or will be, usable at `when`."""
        return self.revoked_at is None and (self.expires_at is None or when < self.expires_at)


@dataclass(frozen=True)
class TokenHealth:
    """How the key's OAuth token fared upstream last: `ok`, `rejected`, `limited` (a subscription usage
    limit) or `unknown` (never used)."""

    state: str
    summary: str
    detail: str


def token_health(key: ApiKey) -> TokenHealth:
    """The token's standing from the last upstream success and rejection recorded for the key."""
    success, failure = key.last_upstream_success_at, key.last_upstream_error_at
    if failure is not None and (success is None or failure > success):
        when = failure.strftime("%Y-%m-%d %H:%M")
        detail = key.last_upstream_error or "rejected upstream"
        # The gateway records "<kind>: <message>"; a subscription's usage limit is not a rejection.
        state = "limited" if detail.startswith("usage limit:") else "rejected"
        return TokenHealth(state, f"{state} {when}", detail)
    if success is not None:
        return TokenHealth("ok", f"ok {success.strftime('%Y-%m-%d %H:%M')}", "accepted upstream")
    return TokenHealth("unknown", "-", "not used upstream yet")


@dataclass(frozen=True)
class KeyCredentials:
    """An authenticated key and its credentials in ranks, decrypted; its repr shows no secret."""

    key: ApiKey
    ranks: tuple[tuple[StoredCredential, ...], ...]

    @property
    def upstream_ranks(self) -> tuple[tuple[UpstreamCredential, ...], ...]:
        """The key's credentials in ranks, as Claude Code processes run on them."""
        return tuple(tuple(credential.upstream() for credential in rank) for rank in self.ranks)


@dataclass(frozen=True)
class _CachedKey:
    credentials: KeyCredentials
    stored_at: float


class KeyStore:
    """API keys in the database, their OAuth tokens encrypted with `cipher`.

    With `cache_seconds`, a successful lookup is reused for that long by this instance, as measured
    by `clock` (seconds, monotonic).
    """

    def __init__(
        self,
        database: Database,
        cipher: TokenCipher,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._cipher = cipher
        self._cache_seconds = cache_seconds
        self._clock = clock
        # The credentials keys run on; changing one here makes this store forget what it cached.
        self.credentials = CredentialStore(database, cipher, on_change=self._forget_all)
        self._cache: dict[str, _CachedKey] = {}
        self._unknown: dict[str, float] = {}
        # Bumped by every local revocation or change, so a lookup that read before it is not cached.
        self._generation = 0

    async def create_key(
        self,
        name: str,
        oauth_token: str | None = None,
        *,
        credentials: Sequence[Sequence[str]] | None = None,
        **limits: Unpack[KeyLimits],
    ) -> tuple[ApiKey, str]:
        """Stores a new key and returns its record and the full key, which is not kept anywhere.

        The key runs on `credentials`, names in ranks (best first), or on `oauth_token`, for which a
        subscription credential named `<key id>-subscription` is created. Raises
        InvalidOAuthTokenError for a token that is not a Claude OAuth token, and InvalidRequestError
        for an empty or overlong name, an invalid limit, both or neither of token and credentials, or
        a credential name that is unknown; nothing is stored then.
        """
        name = _validate_name(name)
        if (oauth_token is None) == (credentials is None):
            raise InvalidRequestError(
                "Give a key either a subscription's OAuth token or credentials in ranks.",
                param="credentials",
            )
        ranks = _validate_ranks(credentials) if credentials is not None else ()
        token = validate_oauth_token(oauth_token) if oauth_token is not None else None
        _validate_limits(limits)
        full_key = generate_api_key()
        now = datetime.now(UTC)
        row = ApiKeyRow(
            id=generate_key_id(),
            name=name,
            key_hash=hash_api_key(full_key),
            key_prefix=key_prefix(full_key),
            created_at=now,
            **limits,
        )
        async with self._database.session() as session:
            if token is not None:
                own = ValidCredential(
                    name=row.id + KEY_SUBSCRIPTION_SUFFIX,
                    kind="subscription",
                    secrets=CredentialSecrets(oauth_token=token),
                    options=CredentialOptions(),
                )
                credential_row = new_credential_row(own, self._cipher, now)
                session.add(credential_row)
                ranks = ((credential_row.name,),)
            session.add(row)
            await session.flush()
            await _set_ranks(session, row.id, ranks)
            return _to_record(row, ranks), full_key

    async def authenticate(self, full_key: str) -> KeyCredentials | None:
        """Returns the key's credentials, or None when the key is unknown, revoked or expired.

        Raises TokenDecryptionError when the stored token cannot be decrypted with this secret.
        """
        credentials = await self.identify(full_key)
        if credentials is None or not credentials.key.is_active:
            return None
        return credentials

    async def identify(self, full_key: str) -> KeyCredentials | None:
        """Returns the credentials of a key that is not revoked, expired or not; None otherwise.

        Raises TokenDecryptionError when the stored token cannot be decrypted with this secret.
        """
        if not looks_like_api_key(full_key):
            return None
        key_hash = hash_api_key(full_key)
        # Looked up by the hash, which a caller cannot steer, so the lookup's timing tells nothing.
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached.stored_at < self._cache_seconds:
            return cached.credentials
        # Unknown keys are remembered briefly too, so that guessing keys costs no database query.
        if now - self._unknown.get(key_hash, -math.inf) < self._cache_seconds:
            return None
        generation = self._generation
        credentials = await self._load(full_key, key_hash)
        if self._cache_seconds > 0 and generation == self._generation:
            if credentials is not None:
                self._remember(key_hash, credentials)
            else:
                if len(self._unknown) >= _KEY_CACHE_MAX_ENTRIES:
                    # A flood of guesses must not grow memory: forget them all and start again.
                    self._unknown.clear()
                self._unknown[key_hash] = now
        return credentials

    async def _load(self, full_key: str, key_hash: str) -> KeyCredentials | None:
        async with self._database.session() as session:
            row = await session.scalar(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))
            )
            if row is None:
                return None
            # The index lookup compares in the database; the decision is made again here in constant
            # time so that it never rests on how a database compares strings.
            if not verify_api_key(full_key, row.key_hash):
                return None
            ranked = (await _credential_rows(session, [row.id])).get(row.id, [])
            record = _to_record(row, _names(ranked))
        return KeyCredentials(key=record, ranks=self._decrypt(ranked))

    def _decrypt(self, ranked: list[list[CredentialRow]]) -> tuple[tuple[StoredCredential, ...], ...]:
        return tuple(tuple(decrypt_credential(row, self._cipher) for row in rank) for rank in ranked)

    def _remember(self, key_hash: str, credentials: KeyCredentials) -> None:
        now = self._clock()
        if len(self._cache) >= _KEY_CACHE_MAX_ENTRIES:
            self._cache = {
                cached_hash: cached
                for cached_hash, cached in self._cache.items()
                if now - cached.stored_at < self._cache_seconds
            }
        self._cache[key_hash] = _CachedKey(credentials, now)

    def _forget_all(self) -> None:
        self._generation += 1
        self._cache.clear()

    def _forget(self, key_id: str) -> None:
        self._generation += 1
        self._cache = {
            cached_hash: cached
            for cached_hash, cached in self._cache.items()
            if cached.credentials.key.id != key_id
        }

    async def active_credentials(self) -> list[KeyCredentials]:
        """Returns every active key with its decrypted credentials, for checks an operator asks for."""
        async with self._database.session() as session:
            rows = list(await session.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))))
            ranked = await _credential_rows(session, [row.id for row in rows])
            loaded = [
                (_to_record(row, _names(ranked.get(row.id, []))), ranked.get(row.id, [])) for row in rows
            ]
        return [
            KeyCredentials(key=record, ranks=self._decrypt(credential_rows))
            for record, credential_rows in loaded
            if record.is_active
        ]

    async def list_keys(self) -> list[ApiKey]:
        """Returns every key, revoked ones included, newest first."""
        async with self._database.session() as session:
            rows = list(
                await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id))
            )
            ranked = await _credential_rows(session, None)
            return [_to_record(row, _names(ranked.get(row.id, []))) for row in rows]

    async def get_key(self, key_id: str) -> ApiKey | None:
        """Returns the key with this public id, or None."""
        async with self._database.session() as session:
            return await _record(session, key_id)

    async def revoke_key(self, key_id_or_full_key: str) -> ApiKey | None:
        """Revokes a key named by its public id or by the full key; returns it, or None if unknown.

        Revoking a revoked key changes nothing and returns it with its first revocation time.
        """
        where = (
            ApiKeyRow.key_hash == hash_api_key(key_id_or_full_key)
            if looks_like_api_key(key_id_or_full_key)
            else ApiKeyRow.id == key_id_or_full_key
        )
        async with self._database.session() as session:
            # Writing before reading lets SQLite take its write lock first, so a concurrent writer
            # makes this wait (busy timeout) instead of failing on a stale read snapshot.
            await session.execute(
                update(ApiKeyRow)
                .where(where, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            key_id = await session.scalar(select(ApiKeyRow.id).where(where))
            record = None if key_id is None else await _record(session, key_id)
        if record is not None:
            self._forget(record.id)
        return record

    async def update_key(
        self,
        key_id: str,
        *,
        credentials: Sequence[Sequence[str]] | None = None,
        **limits: Unpack[KeyLimits],
    ) -> ApiKey | None:
        """Changes the given limits of a key, and its credentials when given (names in ranks, best
        first, replacing the ranks it had); returns it, or None if the key is unknown.

        Raises InvalidRequestError for an invalid limit or an unknown credential; nothing changes then.
        """
        _validate_limits(limits)
        ranks = _validate_ranks(credentials) if credentials is not None else None
        async with self._database.session() as session:
            if limits:
                await session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(**limits))
            if ranks is not None and await session.get(ApiKeyRow, key_id) is not None:
                await session.execute(delete(KeyCredentialRow).where(KeyCredentialRow.key_id == key_id))
                await _set_ranks(session, key_id, ranks)
            record = await _record(session, key_id)
        self._forget(key_id)
        return record

    async def mark_used(self, key_id: str, when: datetime) -> None:
        """Records that the key served a request at `when`; never moves that time backwards."""
        async with self._database.session() as session:
            await session.execute(
                update(ApiKeyRow)
                .where(
                    ApiKeyRow.id == key_id,
                    or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at < when),
                )
                .values(last_used_at=when)
            )

    async def record_upstream_result(
        self, key_id: str, ok: bool, error: str | None = None, *, when: datetime | None = None
    ) -> None:
        """Records whether the key's OAuth token worked upstream; `error` comes redacted."""
        when = when or datetime.now(UTC)
        values: dict[str, object] = (
            {"last_upstream_success_at": when}
            if ok
            else {
                "last_upstream_error_at": when,
                "last_upstream_error": (error or "unknown error")[:UPSTREAM_ERROR_MAX_CHARS],
            }
        )
        async with self._database.session() as session:
            await session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(values))


def _validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        raise InvalidRequestError(f"A key's name must have 1 to {NAME_MAX_CHARS} characters.", param="name")
    return name


def _validate_ranks(credentials: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    ranks: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for rank in credentials:
        names = tuple(sorted({name.strip() for name in rank if name.strip()}))
        if not names:
            continue
        for name in names:
            if name in seen:
                raise InvalidRequestError(
                    f"Credential '{name}' is ranked twice; give each credential one rank.",
                    param="credentials",
                )
            seen.add(name)
        ranks.append(names)
    if not ranks:
        raise InvalidRequestError("A key needs at least one credential.", param="credentials")
    return tuple(ranks)


async def _set_ranks(session: AsyncSession, key_id: str, ranks: tuple[tuple[str, ...], ...]) -> None:
    """Ranks the named credentials for the key; InvalidRequestError naming any that is unknown."""
    names = [name for rank in ranks for name in rank]
    rows = await session.execute(
        select(CredentialRow.name, CredentialRow.id).where(CredentialRow.name.in_(names))
    )
    found = {name: credential_id for name, credential_id in rows}
    unknown = [name for name in names if name not in found]
    if unknown:
        raise InvalidRequestError(
            f"No credential named {', '.join(repr(name) for name in unknown)}: add it first "
            "(credentials add), or see `credentials list`.",
            param="credentials",
        )
    for number, rank in enumerate(ranks, start=1):
        for name in rank:
            session.add(KeyCredentialRow(key_id=key_id, credential_id=found[name], rank=number))
    await session.flush()


async def _credential_rows(
    session: AsyncSession, key_ids: list[str] | None
) -> dict[str, list[list[CredentialRow]]]:
    """The credentials of the keys (of every key for None) grouped in ranks, best first."""
    query = (
        select(KeyCredentialRow.key_id, KeyCredentialRow.rank, CredentialRow)
        .join(CredentialRow, CredentialRow.id == KeyCredentialRow.credential_id)
        .order_by(KeyCredentialRow.key_id, KeyCredentialRow.rank, CredentialRow.name)
    )
    if key_ids is not None:
        query = query.where(KeyCredentialRow.key_id.in_(key_ids))
    grouped: dict[str, dict[int, list[CredentialRow]]] = defaultdict(dict)
    for key_id, rank, credential in await session.execute(query):
        grouped[key_id].setdefault(rank, []).append(credential)
    return {key_id: [ranks[rank] for rank in sorted(ranks)] for key_id, ranks in grouped.items()}


def _names(ranked: list[list[CredentialRow]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(row.name for row in rank) for rank in ranked)


async def _record(session: AsyncSession, key_id: str) -> ApiKey | None:
    row = await session.get(ApiKeyRow, key_id)
    if row is None:
        return None
    return _to_record(row, _names((await _credential_rows(session, [key_id])).get(key_id, [])))


def _validate_limits(limits: KeyLimits) -> None:
    for name, value in (
        ("rpm_limit", limits.get("rpm_limit")),
        ("concurrency_limit", limits.get("concurrency_limit")),
    ):
        if value is not None and value < 1:
            raise InvalidRequestError(f"'{name}' must be at least 1.", param=name)
    budget = limits.get("budget_usd")
    if budget is not None and budget < 0:
        raise InvalidRequestError("'budget_usd' must not be negative.", param="budget_usd")
    expires_at = limits.get("expires_at")
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidRequestError("'expires_at' needs a time zone.", param="expires_at")
    period = limits.get("budget_period")
    if period is not None and period not in BUDGET_PERIODS:
        raise InvalidRequestError(
            f"'budget_period' must be one of {', '.join(BUDGET_PERIODS)}, or unset for no period.",
            param="budget_period",
        )
    models = limits.get("allowed_models")
    if models is not None:
        _validate_models(models)


def _validate_models(models: list[str]) -> None:
    if not models:
        raise InvalidRequestError(
            "'allowed_models' must name at least one model; leave it unset to allow every model.",
            param="allowed_models",
        )
    for model in models:
        try:
            catalog.resolve_model(model)
        except ModelNotFoundError:
            raise InvalidRequestError(
                f"'allowed_models' names '{model}', which this gateway does not serve; "
                "GET /v1/models lists the models served.",
                param="allowed_models",
            ) from None


def _to_record(row: ApiKeyRow, ranks: tuple[tuple[str, ...], ...]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.key_prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        rpm_limit=row.rpm_limit,
        concurrency_limit=row.concurrency_limit,
        allowed_models=None if row.allowed_models is None else tuple(row.allowed_models),
        expires_at=row.expires_at,
        budget_usd=row.budget_usd,
        budget_period=row.budget_period,
        last_upstream_success_at=row.last_upstream_success_at,
        last_upstream_error_at=row.last_upstream_error_at,
        last_upstream_error=row.last_upstream_error,
        credential_ranks=ranks,
    )
