"""Token usage: one record per request, totals per key and per upstream credential, and a timeline in time
buckets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import InstrumentedAttribute

from claude_code_api.store.database import Database
from claude_code_api.store.tables import UsageRecordRow

# Buckets start at whole multiples of their width since the Unix epoch: hours on the hour, days at
# midnight UTC.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMELINE_BUCKETS = 10_000


@dataclass(frozen=True)
class UsageRecord:
    """One request served for a key, as the routes report it."""

    key_id: str
    created_at: datetime
    model: str
    status: int
    endpoint: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    first_token_ms: int | None = None
    total_ms: int | None = None
    credential: str | None = None  # the name of the upstream credential that answered, when one did


@dataclass(frozen=True)
class UsageTotals:
    """What one key has used over a period."""

    requests: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class UsageBucket:
    """Requests and tokens in the time bucket that starts at `start`."""

    start: datetime
    requests: int
    input_tokens: int
    output_tokens: int


class UsageStore:
    """Usage records in the database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, record: UsageRecord) -> None:
        """Stores one usage record."""
        await self.record_many([record])

    async def record_many(self, records: Sequence[UsageRecord]) -> None:
        """Stores usage records in one transaction."""
        if not records:
            return
        async with self._database.session() as session:
            await session.execute(insert(UsageRecordRow), [asdict(record) for record in records])

    async def totals_by_key(self, since: datetime | None = None) -> dict[str, UsageTotals]:
        """Returns the totals of every key with usage, counting records from `since` if given."""
        return await self._totals(UsageRecordRow.key_id, since)

    async def totals_by_credential(self, since: datetime | None = None) -> dict[str, UsageTotals]:
        """Returns the totals of every upstream credential (by name) that answered requests, counting
        records from `since` if given; records without a credential are left out."""
        totals = await self._totals(UsageRecordRow.credential, since)
        return {name: value for name, value in totals.items() if name is not None}

    async def _totals(
        self, column: InstrumentedAttribute[Any], since: datetime | None
    ) -> dict[Any, UsageTotals]:
        query = select(
            column,
            func.count(),
            func.sum(UsageRecordRow.input_tokens),
            func.sum(UsageRecordRow.output_tokens),
            func.sum(UsageRecordRow.cache_creation_tokens),
            func.sum(UsageRecordRow.cache_read_tokens),
            func.sum(UsageRecordRow.cost_usd),
        ).group_by(column)
        if since is not None:
            query = query.where(UsageRecordRow.created_at >= since)
        async with self._database.session() as session:
            rows = await session.execute(query)
            return {
                group: UsageTotals(
                    requests=requests,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cache_creation_tokens=cache_creation_tokens,
                    cache_read_tokens=cache_read_tokens,
                    cost_usd=cost_usd,
                )
                for (
                    group,
                    requests,
                    input_tokens,
                    output_tokens,
                    cache_creation_tokens,
                    cache_read_tokens,
                    cost_usd,
                ) in rows
            }

    async def cost_since(self, key_id: str, since: datetime | None) -> float:
        """Returns what the key's requests cost in USD from `since` on, or in all when it is None."""
        query = select(func.sum(UsageRecordRow.cost_usd)).where(UsageRecordRow.key_id == key_id)
        if since is not None:
            query = query.where(UsageRecordRow.created_at >= since)
        async with self._database.session() as session:
            total = await session.scalar(query)
            return float(total or 0.0)

    async def timeline(
        self,
        key_id: str | None,
        bucket: timedelta,
        since: datetime,
        until: datetime | None = None,
    ) -> list[UsageBucket]:
        """Returns a bucket per `bucket` of time from `since` to `until` (default now), empty too.

        Covers one key, or all keys when `key_id` is None. `since` is rounded down to the start of
        its bucket, so the first bucket is complete; the last holds what happened up to `until`.
        """
        until = until or datetime.now(UTC)
        if bucket <= timedelta(0):
            raise ValueError("bucket must be a positive duration")
        first = _bucket_index(since, bucket)
        last = _bucket_index(until, bucket)
        if last - first + 1 > MAX_TIMELINE_BUCKETS:
            raise ValueError(f"a timeline has at most {MAX_TIMELINE_BUCKETS} buckets")

        # Bucketing in Python keeps the query portable: SQLite and PostgreSQL share no date math.
        counts = [[0, 0, 0] for _ in range(first, last + 1)]
        query = select(
            UsageRecordRow.created_at, UsageRecordRow.input_tokens, UsageRecordRow.output_tokens
        ).where(
            UsageRecordRow.created_at >= _bucket_start(first, bucket),
            UsageRecordRow.created_at <= until,
        )
        if key_id is not None:
            query = query.where(UsageRecordRow.key_id == key_id)
        async with self._database.session() as session:
            rows = await session.stream(query)
            async for created_at, input_tokens, output_tokens in rows:
                counts_in_bucket = counts[_bucket_index(created_at, bucket) - first]
                counts_in_bucket[0] += 1
                counts_in_bucket[1] += input_tokens
                counts_in_bucket[2] += output_tokens
        return [
            UsageBucket(
                start=_bucket_start(first + offset, bucket),
                requests=requests,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
            for offset, (requests, input_tokens, output_tokens) in enumerate(counts)
        ]


def _bucket_index(when: datetime, bucket: timedelta) -> int:
    return (when - _EPOCH) // bucket


def _bucket_start(index: int, bucket: timedelta) -> datetime:
    return _EPOCH + index * bucket
