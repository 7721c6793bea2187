"""The admin password check, the fingerprint sessions are bound to, and login throttling."""

from __future__ import annotations

import pytest

from claude_code_api.security.admin_auth import (
    MemoryLoginThrottle,
    backoff_seconds,
    derive_admin_key,
    password_fingerprint,
    password_matches,
)


@pytest.mark.parametrize(
    ("given", "expected", "matches"),
    [
        ("s3cret-pass", "s3cret-pass", True),
        ("s3cret-pas", "s3cret-pass", False),
        ("s3cret-pass ", "s3cret-pass", False),
        ("S3CRET-PASS", "s3cret-pass", False),
        ("", "s3cret-pass", False),
        ("pässwört", "pässwört", True),
    ],
)
def test_password_matches_only_the_exact_password(given, expected, matches):
    assert password_matches(given, expected) is matches


def test_admin_key_is_derived_from_the_secret_and_differs_per_secret():
    assert derive_admin_key(b"secret-one") == derive_admin_key(b"secret-one")
    assert derive_admin_key(b"secret-one") != derive_admin_key(b"secret-two")
    assert len(derive_admin_key(b"secret-one")) == 32


def test_fingerprint_changes_with_the_password_and_hides_it():
    key = derive_admin_key(b"secret")
    fingerprint = password_fingerprint(key, "hunter2-long")
    assert fingerprint == password_fingerprint(key, "hunter2-long")
    assert fingerprint != password_fingerprint(key, "hunter3-long")
    assert fingerprint != password_fingerprint(derive_admin_key(b"other"), "hunter2-long")
    assert "hunter2" not in fingerprint


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(1, 0), (3, 0), (4, 1), (5, 2), (6, 4), (9, 32), (10, 60), (1000, 60)],
)
def test_each_failure_past_the_free_ones_doubles_the_wait_up_to_a_minute(failures, wait):
    assert backoff_seconds(failures) == wait


async def test_failures_make_one_address_wait_longer_each_time():
    clock = FakeClock()
    throttle = MemoryLoginThrottle(clock=clock)
    for _ in range(3):
        await throttle.record_failure("10.0.0.1")
    assert await throttle.retry_after("10.0.0.1") is None
    await throttle.record_failure("10.0.0.1")
    assert await throttle.retry_after("10.0.0.1") == pytest.approx(1)
    clock.now += 1
    assert await throttle.retry_after("10.0.0.1") is None
    await throttle.record_failure("10.0.0.1")
    assert await throttle.retry_after("10.0.0.1") == pytest.approx(2)
    assert await throttle.retry_after("10.0.0.2") is None


async def test_an_attacker_never_locks_the_address_for_more_than_a_minute():
    clock = FakeClock()
    throttle = MemoryLoginThrottle(clock=clock)
    for _ in range(500):
        await throttle.record_failure("shared-proxy")
        wait = await throttle.retry_after("shared-proxy")
        assert wait is None or wait <= 60
        clock.now += wait or 0
    await throttle.record_failure("shared-proxy")
    assert await throttle.retry_after("shared-proxy") == pytest.approx(60)
    clock.now += 60
    assert await throttle.retry_after("shared-proxy") is None


async def test_failures_are_forgotten_a_quarter_hour_after_the_last():
    clock = FakeClock()
    throttle = MemoryLoginThrottle(clock=clock)
    for _ in range(6):
        await throttle.record_failure("a")
    clock.now += 15 * 60
    await throttle.record_failure("a")
    assert await throttle.retry_after("a") is None


async def test_success_forgets_the_failures():
    throttle = MemoryLoginThrottle(clock=FakeClock())
    for _ in range(3):
        await throttle.record_failure("a")
    await throttle.record_success("a")
    await throttle.record_failure("a")
    assert await throttle.retry_after("a") is None


async def test_memory_stays_bounded_under_a_flood_of_addresses():
    throttle = MemoryLoginThrottle(max_addresses=100, clock=FakeClock())
    for number in range(1000):
        await throttle.record_failure(f"10.0.{number // 256}.{number % 256}")
    assert len(throttle._failures) == 100
