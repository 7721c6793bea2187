"""Per-key limits, so that one API key cannot crowd out the others or run up a bill: requests per
minute, requests at once, the models it may use and a spending budget.

Counters live in this process by default. With REDIS_URL they live in Redis, so that every worker and
instance enforces one limit per key. Requests per minute use the `limits` library's moving window.
Requests at once are leases in a sorted set, each with its own expiry that the holder renews while the
request runs: a crashed instance stops renewing, and its slots come back within LEASE_TTL_SECONDS. (One
counter with INCR/DECR cannot do that: its TTL either ends while requests still run or, refreshed by
every request, never ends under steady traffic.) A budget is the cost recorded in the usage store over
the current period (UTC day, ISO week from Monday, calendar month, or all time), cached briefly; requests
already running when it runs out may take the spend past it.

    async with limiter.admit(caller.key, model) as lease:   # raises when a limit is reached
        ...                                                 # the slot is held in here
        return StreamingResponse(lease.release_after(events))  # ... or until the stream ends
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from claude_code_api import catalog
from claude_code_api.errors import (
    LimitStoreUnavailableError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
)
from claude_code_api.store.keys import ApiKey

logger = logging.getLogger(__name__)

T = TypeVar("T")

RPM_WINDOW_SECONDS = 60
# A slot held by a crashed instance comes back after this long; live holders renew every third of it.
LEASE_TTL_SECONDS = 30.0
# Another instance's spending shows in this instance's budget checks after at most this long.
SPEND_CACHE_SECONDS = 5.0
# No one knows when a running request ends; a second is long enough not to hammer, short enough to help.
CONCURRENCY_RETRY_SECONDS = 1.0
REDIS_TIMEOUT_SECONDS = 2.0

SpendQuery = Callable[[str, datetime | None], Awaitable[float]]


# --- leases --------------------------------------------------------------------------------------


class Lease:
    """A held concurrency slot; `release()` gives it back once, however often it is called.

    A lease from a key without a concurrency limit holds nothing and releases nothing.
    """

    def __init__(self, give_back: Callable[[], Awaitable[None]] | None = None) -> None:
        self._give_back = give_back
        self._handed_off = False

    @property
    def released(self) -> bool:
        """Tells whether the slot has been given back (always true for a lease that holds none)."""
        return self._give_back is None

    @property
    def handed_off(self) -> bool:
        """Tells whether a stream now owns the lease (see `release_after`)."""
        return self._handed_off

    async def release(self) -> None:
        """Gives the slot back; later calls do nothing."""
        give_back, self._give_back = self._give_back, None
        if give_back is not None:
            await give_back()

    def release_after(
        self, events: AsyncIterator[T], *, last: Callable[[T], bool] | None = None
    ) -> AsyncGenerator[T, None]:
        """Hands the lease to a stream: it is released when `events` ends, fails or is closed.

        With `last`, it is released just before the event that `last` recognises goes out: a client
        that sends its next request on reading that event (the openai client stops at `[DONE]`)
        must not find the slot still taken while the stream winds down. A client that disconnects
        makes the server cancel or close the stream, which releases the lease too.
        """
        self._handed_off = True

        async def held() -> AsyncGenerator[T, None]:
            try:
                async for event in events:
                    if last is not None and last(event):
                        await self.release()
                    yield event
            finally:
                await self.release()

        return held()


# --- backends: where the counters live ------------------------------------------------------------


class LimitBackend(ABC):
    """Counts requests per window and holds concurrency slots, per key id."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._window = MovingWindowRateLimiter(storage)

    @property
    def redis_client(self) -> aioredis.Redis | None:
        """The Redis client that shares the counts, or None when they stay in this process."""
        return None

    async def hit(self, key_id: str, limit: int, window_seconds: int) -> float | None:
        """Counts a request against `limit` per moving window of `window_seconds`.

        Returns None when the request fits, or the seconds until one would (nothing is counted then).
        """
        item = RateLimitItemPerSecond(limit, window_seconds)
        if await self._window.hit(item, key_id):
            return None
        stats = await self._window.get_window_stats(item, key_id)
        return max(0.0, stats.reset_time - time.time())

    @abstractmethod
    async def acquire(self, key_id: str, limit: int) -> Lease | None:
        """Takes one of the key's `limit` slots and returns its lease, or None when all are taken."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stops background work and closes connections."""


class MemoryBackend(LimitBackend):
    """Counters in this process: each worker and instance enforces the limits on its own."""

    def __init__(self) -> None:
        self._memory = MemoryStorage()
        super().__init__(self._memory)
        self._held: Counter[str] = Counter()

    def held(self, key_id: str) -> int:
        """Returns how many slots of the key are held now."""
        return self._held[key_id]

    async def acquire(self, key_id: str, limit: int) -> Lease | None:
        # No await between the check and the increment: on one event loop this is atomic.
        if self._held[key_id] >= limit:
            return None
        self._held[key_id] += 1
        return Lease(partial(self._give_back, key_id))

    async def _give_back(self, key_id: str) -> None:
        self._held[key_id] -= 1
        if self._held[key_id] <= 0:
            del self._held[key_id]

    async def aclose(self) -> None:
        timer = self._memory.timer
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer


# The server's clock, not each instance's, times every lease, so clock skew cannot shorten them.
_ACQUIRE_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], t + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
return 1
"""

_RENEW_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', t + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
return 1
"""


class RedisBackend(LimitBackend):
    """Counters in Redis, shared by every worker and instance that uses the same URL and prefix."""

    def __init__(
        self, client: aioredis.Redis, key_prefix: str, *, lease_ttl: float = LEASE_TTL_SECONDS
    ) -> None:
        # limits' Redis storage takes our connection pool as an extra client option.
        pool: Any = client.connection_pool
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=f"{key_prefix}:rpm",
            connection_pool=pool,
        )
        super().__init__(storage)
        self._client = client
        self._prefix = key_prefix
        self._lease_ttl = lease_ttl
        self._acquire_script = client.register_script(_ACQUIRE_SCRIPT)
        self._renew_script = client.register_script(_RENEW_SCRIPT)
        self._held: dict[str, set[str]] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, key_prefix: str, *, lease_ttl: float = LEASE_TTL_SECONDS) -> RedisBackend:
        """Connects to Redis at `url`; raises LimitStoreUnavailableError when it does not answer."""
        client = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise LimitStoreUnavailableError(
                f"Redis (REDIS_URL) does not answer: {type(exc).__name__}. Start it, or unset REDIS_URL "
                "to count limits in each process."
            ) from None
        backend = cls(client, key_prefix, lease_ttl=lease_ttl)
        backend._renewer = asyncio.create_task(backend._renew_forever())
        return backend

    @property
    def redis_client(self) -> aioredis.Redis | None:
        return self._client

    def held(self, key_id: str) -> int:
        """Returns how many slots of the key this instance holds now."""
        return len(self._held.get(self._slots_key(key_id), ()))

    async def hit(self, key_id: str, limit: int, window_seconds: int) -> float | None:
        try:
            return await super().hit(key_id, limit, window_seconds)
        except RedisError as exc:
            raise _unavailable(exc) from None

    async def acquire(self, key_id: str, limit: int) -> Lease | None:
        slots = self._slots_key(key_id)
        member = secrets.token_hex(8)
        try:
            taken = await self._acquire_script(keys=[slots], args=[limit, self._lease_ttl, member])
        except RedisError as exc:
            raise _unavailable(exc) from None
        if not taken:
            return None
        self._held.setdefault(slots, set()).add(member)
        return Lease(partial(self._give_back, slots, member))

    async def _give_back(self, slots: str, member: str) -> None:
        members = self._held.get(slots)
        if members is not None:
            members.discard(member)
            if not members:
                del self._held[slots]
        # Shielded: a cancelled request (client gone) still gives its slot back.
        task = asyncio.create_task(self._remove(slots, member))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        await asyncio.shield(task)

    async def _remove(self, slots: str, member: str) -> None:
        try:
            await self._client.zrem(slots, member)
        except RedisError:
            logger.warning("Could not release a concurrency slot in Redis; it expires on its own")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl / 3)
            for slots, members in list(self._held.items()):
                try:
                    await self._renew_script(keys=[slots], args=[self._lease_ttl, *members])
                except RedisError:
                    logger.warning("Could not renew concurrency slots in Redis; retrying")

    def _slots_key(self, key_id: str) -> str:
        return f"{self._prefix}:slots:{key_id}"

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        if self._releases:
            await asyncio.wait(self._releases, timeout=REDIS_TIMEOUT_SECONDS)
        await self._client.aclose()


def _unavailable(exc: Exception) -> LimitStoreUnavailableError:
    logger.warning("Redis (REDIS_URL) failed: %s", type(exc).__name__)
    return LimitStoreUnavailableError(
        "The gateway cannot reach the store of its rate limits; try again shortly.",
        retry_after=CONCURRENCY_RETRY_SECONDS,
    )


async def open_backend(redis_url: str | None, key_prefix: str) -> LimitBackend:
    """The Redis backend when `redis_url` is set, else the in-process one."""
    if redis_url is None:
        return MemoryBackend()
    return await RedisBackend.open(redis_url, key_prefix)


# --- the rules -------------------------------------------------------------------------------------


def check_model(allowed_models: Sequence[str] | None, model: str) -> None:
    """Raises PermissionDeniedError unless `model` is allowed; None allows every model.

    A name in the list allows itself and any name that resolves to it (`sonnet` allows `gpt-4-turbo`).
    Raises ModelNotFoundError for a name the gateway does not serve.
    """
    if allowed_models is None:
        return
    choice = catalog.resolve_model(model)
    if choice.requested in allowed_models or choice.claude_model in allowed_models:
        return
    raise PermissionDeniedError(
        f"This API key may not use the model '{model}'. It may use: {', '.join(allowed_models)}.",
        param="model",
    )


def budget_period_start(period: str | None, now: datetime) -> datetime | None:
    """The start of the budget period around `now`, in UTC; None for a budget over all time."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    return None


def budget_period_end(period: str | None, now: datetime) -> datetime | None:
    """When the budget period around `now` ends and the spend starts again from zero; None: never."""
    start = budget_period_start(period, now)
    if start is None:
        return None
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(weeks=1)
    return (start + timedelta(days=32)).replace(day=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Spend:
    since: datetime | None
    amount: float
    fetched_at: float


class KeyLimiter:
    """Enforces each key's limits on the requests it makes; one per process, over one backend.

    `spend(key_id, since)` returns the cost a key's requests recorded from `since` on (UsageStore's
    `cost_since`); `now` is the clock budgets are measured with.
    """

    def __init__(
        self,
        backend: LimitBackend,
        spend: SpendQuery,
        *,
        now: Callable[[], datetime] = _utc_now,
        spend_cache_seconds: float = SPEND_CACHE_SECONDS,
    ) -> None:
        self.backend = backend
        self._spend = spend
        self._now = now
        self._spend_cache_seconds = spend_cache_seconds
        self._spent: dict[str, _Spend] = {}

    @contextlib.asynccontextmanager
    async def admit(self, key: ApiKey, model: str) -> AsyncIterator[Lease]:
        """Admits a request of `key` for `model` and holds its concurrency slot for the block.

        The slot is released when the block ends, unless the block hands the lease to a stream with
        `lease.release_after(events)`. Raises PermissionDeniedError (403) for a model the key may
        not use, QuotaExceededError (429, no retry) for a spent budget, RateLimitError (429 with
        Retry-After) when the key is at its concurrency or per-minute limit, and
        LimitStoreUnavailableError (503) when Redis does not answer.
        """
        lease = await self.acquire(key, model)
        try:
            yield lease
        finally:
            if not lease.handed_off:
                await lease.release()

    async def acquire(self, key: ApiKey, model: str) -> Lease:
        """Checks the key's limits and takes a concurrency slot; the caller releases the lease."""
        check_model(key.allowed_models, model)
        if key.budget_usd is not None:
            await self._check_budget(key, key.budget_usd)
        lease = Lease()
        if key.concurrency_limit is not None:
            slot = await self.backend.acquire(key.id, key.concurrency_limit)
            if slot is None:
                raise RateLimitError(
                    f"This API key is at its limit of {key.concurrency_limit} requests at once; "
                    "retry when one of them has finished.",
                    retry_after=CONCURRENCY_RETRY_SECONDS,
                )
            lease = slot
        if key.rpm_limit is not None:
            try:
                wait = await self.backend.hit(key.id, key.rpm_limit, RPM_WINDOW_SECONDS)
            except BaseException:
                await lease.release()
                raise
            if wait is not None:
                await lease.release()
                raise RateLimitError(
                    f"This API key is at its limit of {key.rpm_limit} requests per minute; "
                    f"retry in {max(1, math.ceil(wait))} s.",
                    retry_after=wait,
                )
        return lease

    def record_spend(self, key_id: str, cost_usd: float, when: datetime) -> None:
        """Adds a finished request's cost to the cached spend, so this instance sees it at once."""
        cached = self._spent.get(key_id)
        if cached is not None and (cached.since is None or when >= cached.since):
            cached.amount += cost_usd

    async def _check_budget(self, key: ApiKey, budget_usd: float) -> None:
        now = self._now()
        since = budget_period_start(key.budget_period, now)
        spent = await self._spent_since(key.id, since)
        if spent < budget_usd:
            return
        used = f"This API key has used its budget of ${budget_usd:.2f}"
        resets = budget_period_end(key.budget_period, now)
        if resets is None:
            raise QuotaExceededError(f"{used} (${spent:.2f} spent). An administrator can raise it.")
        raise QuotaExceededError(
            f"{used} for this {key.budget_period} (${spent:.2f} spent); it renews on "
            f"{resets:%Y-%m-%d %H:%M} UTC. An administrator can raise it."
        )

    async def _spent_since(self, key_id: str, since: datetime | None) -> float:
        cached = self._spent.get(key_id)
        fresh = cached is not None and time.monotonic() - cached.fetched_at < self._spend_cache_seconds
        if cached is not None and fresh and cached.since == since:
            return cached.amount
        amount = await self._spend(key_id, since)
        self._spent[key_id] = _Spend(since, amount, time.monotonic())
        return amount

    async def aclose(self) -> None:
        """Closes the backend."""
        await self.backend.aclose()
