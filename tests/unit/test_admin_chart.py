"""Tests of routes/admin_chart.py: the usage chart's scales, bars, ticks and range links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from claude_code_api.routes.admin_chart import (
    DEFAULT_RANGE,
    RANGES,
    build_chart,
    chart_range,
    compact,
    nice_top,
    range_links,
)
from claude_code_api.store.usage import UsageBucket

HOURS, DAYS = RANGES
START = datetime(2026, 11, 24, 12, tzinfo=UTC)


def buckets(counts: list[tuple[int, int, int]], width: timedelta = timedelta(hours=1)) -> list[UsageBucket]:
    return [UsageBucket(START + index * width, *count) for index, count in enumerate(counts)]


@pytest.mark.parametrize(
    ("peak", "top"),
    [(0, 1), (1, 1), (3, 3), (7, 8), (9, 10), (12, 20), (27, 30), (100, 100), (101, 200), (57_000, 60_000)],
)
def test_scale_tops_are_round_numbers_at_or_above_the_peak(peak, top):
    assert nice_top(peak) == top


@pytest.mark.parametrize(
    ("number", "text"), [(5, "5"), (2_000, "2,000"), (30_000, "30k"), (250_000, "250k"), (4_000_000, "4M")]
)
def test_scale_tops_are_written_short(number, text):
    assert compact(number) == text


@pytest.mark.parametrize(
    ("name", "chosen"), [("24h", HOURS), ("14d", DAYS), (None, DEFAULT_RANGE), ("x", HOURS)]
)
def test_a_range_is_named_by_the_query_string(name, chosen):
    assert chart_range(name) == chosen


def test_ranges_end_with_the_bucket_that_holds_now():
    now = datetime(2026, 11, 25, 13, 40, tzinfo=UTC)
    assert HOURS.since(now) == now - timedelta(hours=23)
    assert DAYS.since(now) == now - timedelta(days=13)


def test_bars_stand_on_the_baseline_scaled_to_the_top():
    chart = build_chart(buckets([(0, 0, 0), (2, 300, 100), (4, 600, 200)]), HOURS)
    assert chart.requests_top == 4
    assert chart.tokens_top == 800
    assert [bar.requests_height for bar in chart.bars] == [0, 50, 100]
    assert [bar.x for bar in chart.bars] == [1.5, 11.5, 21.5]
    last = chart.bars[-1]
    assert (last.input_y, last.output_y, last.input_height, last.output_height) == (25, 0, 75, 25)
    assert chart.width == 30
    assert (chart.requests, chart.input_tokens, chart.output_tokens) == (6, 900, 300)


def test_a_tiny_bar_is_still_seen():
    chart = build_chart(buckets([(1, 1, 0), (1000, 100_000, 0)]), HOURS)
    assert chart.bars[0].requests_height == 1.5
    assert chart.bars[0].input_height == 1.5


def test_hours_are_ticked_every_six_hours_and_labelled_in_utc():
    chart = build_chart(buckets([(0, 0, 0)] * 24), HOURS)
    assert [bar.tick for bar in chart.bars if bar.tick] == ["12:00", "18:00", "00:00", "06:00"]
    assert chart.bars[0].label == "2026-11-24 12:00"
    assert not any(bar.tick_minor for bar in chart.bars)


def test_days_are_ticked_every_other_day_back_from_the_newest_and_every_fourth_on_phones():
    chart = build_chart(buckets([(0, 0, 0)] * 14, timedelta(days=1)), DAYS)
    ticks = [bar.tick for bar in chart.bars if bar.tick]
    assert ticks == ["Nov 25", "Nov 27", "Nov 29", "Dec 1", "Dec 3", "Dec 5", "Dec 7"]
    assert [bar.tick for bar in chart.bars if bar.tick and not bar.tick_minor] == [
        "Nov 25",
        "Nov 29",
        "Dec 3",
        "Dec 7",
    ]
    assert chart.bars[-1].label == "2026-12-07"


def test_descriptions_name_the_busiest_bucket():
    chart = build_chart(buckets([(1, 10, 5), (3, 10, 5)]), HOURS)
    assert chart.describe_requests() == (
        "4 requests in the last 24 hours; the most, 3, in the hour from 2026-11-24 13:00 UTC."
    )
    assert build_chart(buckets([(0, 0, 0)]), HOURS).describe_tokens() == "No tokens in the last 24 hours."


def test_range_links_keep_the_rest_of_the_query():
    links = range_links("/admin", {"q": "ci", "range": "14d"}, DAYS)
    assert [(link.label, link.href, link.current) for link in links] == [
        ("24 hours", "/admin?q=ci", False),
        ("14 days", "/admin?q=ci&range=14d", True),
    ]
    assert range_links("/admin/keys/k", {}, HOURS)[0].href == "/admin/keys/k"
