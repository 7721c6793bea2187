"""Tests of security/ratelimit.py: the rules, leases, the in-process backend and the limiter over it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from claude_code_api.errors import (
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
)
from claude_code_api.security.ratelimit import (
    CONCURRENCY_RETRY_SECONDS,
    KeyLimiter,
    Lease,
    MemoryBackend,
    budget_period_end,
    budget_period_start,
    check_model,
)
from tests.factories import make_api_key

# A Wednesday afternoon in the middle of a month.
WEDNESDAY = datetime(2026, 5, 13, 15, 30, 12, tzinfo=UTC)


# --- budget periods ------------------------------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", WEDNESDAY, utc(2026, 5, 13), utc(2026, 5, 14)),
        ("day", utc(2026, 5, 13, 23, 59), utc(2026, 5, 13), utc(2026, 5, 14)),
        ("week", WEDNESDAY, utc(2026, 5, 11), utc(2026, 5, 18)),
        ("week", utc(2026, 5, 11), utc(2026, 5, 11), utc(2026, 5, 18)),
        ("month", WEDNESDAY, utc(2026, 5, 1), utc(2026, 6, 1)),
        ("month", utc(2026, 1, 31), utc(2026, 1, 1), utc(2026, 2, 1)),
        ("month", utc(2026, 12, 31, 23, 59), utc(2026, 12, 1), utc(2027, 1, 1)),
        # Periods are UTC days: 01:00 in UTC+2 is still the previous day in UTC.
        (
            "day",
            datetime(2026, 5, 13, 1, tzinfo=timezone(timedelta(hours=2))),
            utc(2026, 5, 12),
            utc(2026, 5, 13),
        ),
        (None, WEDNESDAY, None, None),
    ],
)
def test_budget_period_starts_and_ends_on_utc_boundaries(period, now, start, end):
    assert budget_period_start(period, now) == start
    assert budget_period_end(period, now) == end


# --- allowed models ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "model"),
    [
        (None, "opus"),
        (("sonnet",), "sonnet"),
        (("sonnet", "haiku"), "haiku"),
        # A name allows the aliases that resolve to it.
        (("sonnet",), "gpt-4-turbo"),
        (("opus",), "gpt-4"),
        (("gpt-4",), "gpt-4"),
        (("claude-sonnet-4-5",), "claude-sonnet-4-5"),
    ],
)
def test_allowed_model_passes(allowed, model):
    check_model(allowed, model)


@pytest.mark.parametrize(
    ("allowed", "model"),
    [
        (("haiku",), "sonnet"),
        (("sonnet",), "claude-sonnet-4-5"),
        (("gpt-4",), "opus"),
    ],
)
def test_model_outside_the_list_is_refused_with_403_naming_the_parameter(allowed, model):
    with pytest.raises(PermissionDeniedError) as refused:
        check_model(allowed, model)
    assert refused.value.status == 403
    assert refused.value.param == "model"
    assert f"'{model}'" in refused.value.message
    assert ", ".join(allowed) in refused.value.message


def test_unknown_model_is_not_found_before_it_is_refused():
    with pytest.raises(ModelNotFoundError):
        check_model(("sonnet",), "gpt-99")


# --- leases --------------------------------------------------------------------------------------


class Returns:
    """Counts how often a lease gives its slot back."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1


async def test_a_lease_is_released_once_however_often_release_is_called():
    returns = Returns()
    lease = Lease(returns)
    assert not lease.released
    await lease.release()
    await lease.release()
    assert lease.released
    assert returns.count == 1


async def test_a_lease_without_a_slot_releases_nothing():
    lease = Lease()
    assert lease.released
    await lease.release()


async def _events(n: int, fail: bool = False) -> AsyncIterator[int]:
    for i in range(n):
        yield i
    if fail:
        raise RuntimeError("stream failed")


async def test_a_stream_releases_its_lease_when_it_ends():
    returns = Returns()
    lease = Lease(returns)
    events = lease.release_after(_events(3))
    assert lease.handed_off
    assert [event async for event in events] == [0, 1, 2]
    assert returns.count == 1


async def test_a_stream_releases_its_lease_when_it_is_closed_midway():
    returns = Returns()
    lease = Lease(returns)
    events = lease.release_after(_events(3))
    assert await anext(events) == 0
    assert returns.count == 0
    await events.aclose()
    assert returns.count == 1


async def test_a_stream_releases_its_lease_when_it_fails():
    returns = Returns()
    lease = Lease(returns)
    with pytest.raises(RuntimeError):
        _ = [event async for event in lease.release_after(_events(1, fail=True))]
    assert returns.count == 1


# --- the in-process backend ------------------------------------------------------------------------


async def test_memory_backend_gives_out_slots_up_to_the_limit_per_key():
    backend = MemoryBackend()
    first = await backend.acquire("a", 2)
    second = await backend.acquire("a", 2)
    assert first is not None
    assert second is not None
    assert await backend.acquire("a", 2) is None
    assert await backend.acquire("b", 2) is not None
    assert backend.held("a") == 2
    await first.release()
    await first.release()
    assert backend.held("a") == 1
    assert await backend.acquire("a", 2) is not None
    await backend.aclose()


async def test_memory_backend_counts_requests_per_window_and_says_how_long_to_wait():
    backend = MemoryBackend()
    assert await backend.hit("a", 2, 60) is None
    assert await backend.hit("a", 2, 60) is None
    wait = await backend.hit("a", 2, 60)
    assert wait is not None
    assert 59 < wait <= 60
    assert await backend.hit("b", 2, 60) is None
    await backend.aclose()


async def test_memory_backend_window_moves_on():
    backend = MemoryBackend()
    assert await backend.hit("a", 1, 1) is None
    assert await backend.hit("a", 1, 1) is not None
    await asyncio.sleep(1.05)
    assert await backend.hit("a", 1, 1) is None
    await backend.aclose()


# --- the limiter -----------------------------------------------------------------------------------


class Spend:
    """What the usage store would answer: a fixed amount, and the questions asked."""

    def __init__(self, amount: float = 0.0) -> None:
        self.amount = amount
        self.asked: list[tuple[str, datetime | None]] = []

    async def __call__(self, key_id: str, since: datetime | None) -> float:
        self.asked.append((key_id, since))
        return self.amount


def make_limiter(spend: Spend | None = None, now: datetime = WEDNESDAY) -> KeyLimiter:
    return KeyLimiter(MemoryBackend(), spend or Spend(), now=lambda: now)


async def test_a_key_without_limits_is_admitted_holding_nothing():
    limiter = make_limiter()
    async with limiter.admit(make_api_key(), "sonnet") as lease:
        assert lease.released
    await limiter.aclose()


async def test_a_key_at_its_concurrency_limit_is_refused_until_a_request_ends():
    limiter = make_limiter()
    key = make_api_key(concurrency_limit=1)
    async with limiter.admit(key, "sonnet") as lease:
        assert not lease.released
        with pytest.raises(RateLimitError) as refused:
            async with limiter.admit(key, "sonnet"):
                pass
    assert refused.value.status == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.retry_after == CONCURRENCY_RETRY_SECONDS
    assert refused.value.headers() == {"Retry-After": "1"}
    assert "1 requests at once" in refused.value.message
    assert lease.released
    async with limiter.admit(key, "sonnet"):
        pass
    await limiter.aclose()


async def test_a_slot_is_released_when_the_request_fails():
    limiter = make_limiter()
    key = make_api_key(concurrency_limit=1)
    with pytest.raises(ValueError, match="boom"):
        async with limiter.admit(key, "sonnet"):
            raise ValueError("boom")
    assert isinstance(limiter.backend, MemoryBackend)
    assert limiter.backend.held(key.id) == 0
    await limiter.aclose()


async def test_a_slot_handed_to_a_stream_is_held_until_the_stream_ends():
    limiter = make_limiter()
    key = make_api_key(concurrency_limit=1)
    async with limiter.admit(key, "sonnet") as lease:
        events = lease.release_after(_events(2))
    assert not lease.released
    with pytest.raises(RateLimitError):
        await limiter.acquire(key, "sonnet")
    assert [event async for event in events] == [0, 1]
    assert lease.released
    await (await limiter.acquire(key, "sonnet")).release()
    await limiter.aclose()


async def test_a_key_over_its_rpm_is_told_when_to_retry():
    limiter = make_limiter()
    key = make_api_key(rpm_limit=2)
    for _ in range(2):
        async with limiter.admit(key, "sonnet"):
            pass
    with pytest.raises(RateLimitError) as refused:
        await limiter.acquire(key, "sonnet")
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.retry_after is not None
    assert 59 < refused.value.retry_after <= 60
    assert refused.value.headers() == {"Retry-After": "60"}
    assert "2 requests per minute" in refused.value.message
    await limiter.aclose()


async def test_a_request_refused_by_rpm_holds_no_slot():
    limiter = make_limiter()
    key = make_api_key(rpm_limit=1, concurrency_limit=5)
    await limiter.acquire(key, "sonnet")
    with pytest.raises(RateLimitError):
        await limiter.acquire(key, "sonnet")
    assert isinstance(limiter.backend, MemoryBackend)
    assert limiter.backend.held(key.id) == 1
    await limiter.aclose()


async def test_a_disallowed_model_is_refused_before_anything_is_counted():
    limiter = make_limiter()
    key = make_api_key(allowed_models=("haiku",), rpm_limit=1)
    with pytest.raises(PermissionDeniedError):
        await limiter.acquire(key, "opus")
    await limiter.acquire(key, "haiku")
    await limiter.aclose()


async def test_a_spent_budget_is_refused_without_retry():
    limiter = make_limiter(Spend(5.0))
    key = make_api_key(budget_usd=5.0)
    with pytest.raises(QuotaExceededError) as refused:
        await limiter.acquire(key, "sonnet")
    assert refused.value.status == 429
    assert refused.value.code == "insufficient_quota"
    assert refused.value.headers() == {"x-should-retry": "false"}
    assert "$5.00" in refused.value.message
    await limiter.aclose()


async def test_a_budget_with_a_period_counts_from_its_start_and_says_when_it_renews():
    spend = Spend(2.5)
    limiter = make_limiter(spend)
    key = make_api_key(budget_usd=2.0, budget_period="month")
    with pytest.raises(QuotaExceededError) as refused:
        await limiter.acquire(key, "sonnet")
    assert spend.asked == [(key.id, datetime(2026, 5, 1, tzinfo=UTC))]
    assert "for this month ($2.50 spent)" in refused.value.message
    assert "renews on 2026-06-01 00:00 UTC" in refused.value.message
    await limiter.aclose()


async def test_a_budget_not_yet_spent_admits():
    limiter = make_limiter(Spend(0.99))
    await limiter.acquire(make_api_key(budget_usd=1.0, budget_period="day"), "sonnet")
    await limiter.aclose()


async def test_spend_is_cached_and_this_instance_adds_its_own_costs_at_once():
    spend = Spend(0.5)
    limiter = make_limiter(spend)
    key = make_api_key(budget_usd=1.0, budget_period="day")
    await limiter.acquire(key, "sonnet")
    await limiter.acquire(key, "sonnet")
    assert len(spend.asked) == 1
    limiter.record_spend(key.id, 0.6, WEDNESDAY)
    with pytest.raises(QuotaExceededError):
        await limiter.acquire(key, "sonnet")
    assert len(spend.asked) == 1
    await limiter.aclose()


async def test_spend_from_before_the_period_is_not_added():
    limiter = make_limiter(Spend(0.5))
    key = make_api_key(budget_usd=1.0, budget_period="day")
    await limiter.acquire(key, "sonnet")
    limiter.record_spend(key.id, 0.6, WEDNESDAY - timedelta(days=1))
    await limiter.acquire(key, "sonnet")
    await limiter.aclose()


async def test_a_changed_budget_period_asks_the_store_again():
    spend = Spend(0.5)
    limiter = make_limiter(spend)
    key = make_api_key(budget_usd=1.0, budget_period="day")
    await limiter.acquire(key, "sonnet")
    await limiter.acquire(make_api_key(id=key.id, budget_usd=1.0, budget_period=None), "sonnet")
    assert spend.asked == [(key.id, datetime(2026, 5, 13, tzinfo=UTC)), (key.id, None)]
    await limiter.aclose()
