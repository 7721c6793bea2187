"""Tests of access.py's AccessRecord: how a request's time splits into the gateway's share and Claude's."""

from __future__ import annotations

import pytest

from claude_code_api.access import AccessRecord, ObservedRun
from claude_code_api.answer.events import ClaudeUsage, RunReport


def run(*, reported_at: float, total_ms: float, first_token_ms: float | None = None) -> ObservedRun:
    report = RunReport(200, "claude-sonnet-4-5", ClaudeUsage(), None, first_token_ms, total_ms)
    return ObservedRun(report, reported_at)


def record(*runs: ObservedRun, arrived_at: float = 100.0) -> AccessRecord:
    return AccessRecord("POST", "/v1/chat/completions", arrived_at, runs=list(runs))


def test_a_request_without_claude_has_no_overhead_and_no_first_token() -> None:
    plain = record()
    assert plain.duration(100.25) == pytest.approx(0.25)
    assert plain.before_claude() is None
    assert plain.after_claude(100.25) is None
    assert plain.first_token() is None
    assert plain.model == ""


def test_the_overhead_is_the_time_before_the_run_started_and_after_it_reported() -> None:
    # Arrived at 100.000; the run started at 100.010 and reported 500 ms later; last byte at 100.530.
    one = record(run(reported_at=100.510, total_ms=500, first_token_ms=300))
    assert one.before_claude() == pytest.approx(0.010)
    assert one.after_claude(100.530) == pytest.approx(0.020)
    assert one.duration(100.530) == pytest.approx(0.530)


def test_the_first_token_counts_from_the_request_arrival() -> None:
    one = record(run(reported_at=100.510, total_ms=500, first_token_ms=300))
    assert one.first_token() == pytest.approx(0.310)


def test_a_run_that_failed_before_its_first_token_has_no_first_token() -> None:
    assert record(run(reported_at=100.2, total_ms=150)).first_token() is None


@pytest.mark.parametrize(
    ("runs", "before", "after"),
    [
        # Two runs (a retried turn): before the first one starts, after the last one reports.
        ((run(reported_at=100.3, total_ms=250), run(reported_at=100.9, total_ms=500)), 0.05, 0.1),
        # The clocks disagree by a hair: never a negative duration.
        ((run(reported_at=100.3, total_ms=301),), 0.0, 0.0),
    ],
)
def test_overhead_phases(runs: tuple[ObservedRun, ...], before: float, after: float) -> None:
    many = record(*runs)
    assert many.before_claude() == pytest.approx(before)
    assert many.after_claude(100.3 if len(runs) == 1 else 101.0) == pytest.approx(after)


def test_the_model_is_the_last_runs() -> None:
    first = run(reported_at=100.1, total_ms=50)
    last = ObservedRun(RunReport(200, "claude-opus-4-5", ClaudeUsage(), None, None, 50), 100.2)
    assert record(first, last).model == "claude-opus-4-5"
