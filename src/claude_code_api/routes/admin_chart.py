"""The usage chart of the admin pages: requests and tokens per hour or per day as the bars of an inline
SVG, with the same numbers as a table; pure.

Built on the server, so that it needs no script and no style attribute (the CSP allows neither): bar
geometry goes into SVG attributes in a viewBox 100 units high that CSS stretches to the chart's width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from claude_code_api.store.usage import UsageBucket

# Every bar takes a slot of this many viewBox units, with a gap either side of it.
SLOT = 10
_BAR_WIDTH = 7
_PLOT_HEIGHT = 100
# A bar for one request is still seen next to one for thousands.
_MIN_HEIGHT = 1.5


@dataclass(frozen=True)
class ChartRange:
    """A time range the chart covers: `buckets` buckets of `bucket`, the last one holding now."""

    name: str
    label: str
    bucket: timedelta
    buckets: int

    @property
    def per(self) -> str:
        return "hour" if self.bucket == timedelta(hours=1) else "day"

    def since(self, now: datetime) -> datetime:
        """The start of the range that ends now; the store rounds it down to its bucket."""
        return now - self.bucket * (self.buckets - 1)


RANGES = (
    ChartRange("24h", "24 hours", timedelta(hours=1), 24),
    ChartRange("14d", "14 days", timedelta(days=1), 14),
)
DEFAULT_RANGE = RANGES[0]


def chart_range(name: str | None) -> ChartRange:
    """The range a query string names; the default (24 hours) for any other value."""
    return next((choice for choice in RANGES if choice.name == name), DEFAULT_RANGE)


@dataclass(frozen=True)
class RangeLink:
    label: str
    href: str
    current: bool


def range_links(path: str, query: Mapping[str, str], current: ChartRange) -> list[RangeLink]:
    """Links that show the page at `path` over each range, keeping the rest of its query."""
    links = []
    for choice in RANGES:
        params = {name: value for name, value in query.items() if name != "range" and value}
        if choice != DEFAULT_RANGE:
            params["range"] = choice.name
        href = path + (f"?{urlencode(params)}" if params else "")
        links.append(RangeLink(choice.label, href, choice == current))
    return links


@dataclass(frozen=True)
class Bar:
    """One bucket: its numbers, where its bars stand in the viewBox, and its label under the axis."""

    label: str
    tick: str
    tick_minor: bool
    requests: int
    input_tokens: int
    output_tokens: int
    x: float
    requests_y: float
    input_y: float
    output_y: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def requests_height(self) -> float:
        return round(_PLOT_HEIGHT - self.requests_y, 2)

    @property
    def input_height(self) -> float:
        return round(_PLOT_HEIGHT - self.input_y, 2)

    @property
    def output_height(self) -> float:
        return round(self.input_y - self.output_y, 2)


@dataclass(frozen=True)
class UsageChart:
    """What the chart of one range shows: a bar per bucket, and the top of each scale."""

    range: ChartRange
    bars: tuple[Bar, ...]
    requests_top: int
    tokens_top: int

    @property
    def width(self) -> int:
        return SLOT * len(self.bars)

    @property
    def slot(self) -> int:
        return SLOT

    @property
    def bar_width(self) -> int:
        return _BAR_WIDTH

    @property
    def requests(self) -> int:
        return sum(bar.requests for bar in self.bars)

    @property
    def input_tokens(self) -> int:
        return sum(bar.input_tokens for bar in self.bars)

    @property
    def output_tokens(self) -> int:
        return sum(bar.output_tokens for bar in self.bars)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def describe_requests(self) -> str:
        """The requests chart in a sentence, for screen readers."""
        if not self.requests:
            return f"No requests in the last {self.range.label}."
        busiest = max(self.bars, key=lambda bar: bar.requests)
        return (
            f"{self.requests:,} requests in the last {self.range.label}; the most, {busiest.requests:,}, "
            f"in the {self.range.per} from {busiest.label} UTC."
        )

    def describe_tokens(self) -> str:
        """The tokens chart in a sentence, for screen readers."""
        if not self.tokens:
            return f"No tokens in the last {self.range.label}."
        busiest = max(self.bars, key=lambda bar: bar.tokens)
        return (
            f"{self.tokens:,} tokens in the last {self.range.label} ({self.input_tokens:,} in, "
            f"{self.output_tokens:,} out); the most, {busiest.tokens:,}, in the {self.range.per} "
            f"from {busiest.label} UTC."
        )


def build_chart(buckets: Sequence[UsageBucket], chart: ChartRange) -> UsageChart:
    """Lays out the timeline's buckets as bars: requests on one scale, tokens stacked (input under
    output) on another, each scale topped by a round number."""
    requests_top = nice_top(max((bucket.requests for bucket in buckets), default=0))
    tokens_top = nice_top(max((bucket.input_tokens + bucket.output_tokens for bucket in buckets), default=0))
    bars = []
    for index, bucket in enumerate(buckets):
        input_y = _PLOT_HEIGHT - _height(bucket.input_tokens, tokens_top)
        bars.append(
            Bar(
                label=_label(bucket.start, chart),
                tick=_tick(bucket.start, chart, index, len(buckets)),
                tick_minor=chart.per == "day" and (len(buckets) - 1 - index) % 4 != 0,
                requests=bucket.requests,
                input_tokens=bucket.input_tokens,
                output_tokens=bucket.output_tokens,
                x=index * SLOT + (SLOT - _BAR_WIDTH) / 2,
                requests_y=round(_PLOT_HEIGHT - _height(bucket.requests, requests_top), 2),
                input_y=round(input_y, 2),
                output_y=round(input_y - _height(bucket.output_tokens, tokens_top), 2),
            )
        )
    return UsageChart(chart, tuple(bars), requests_top, tokens_top)


def nice_top(peak: int) -> int:
    """The smallest round number (1, 2, 3, 4, 5, 6, 8 times a power of ten) that is at least `peak`."""
    magnitude = int(10 ** max(0, len(str(max(peak, 1))) - 1))
    return next(step * magnitude for step in (1, 2, 3, 4, 5, 6, 8, 10) if step * magnitude >= peak)


def compact(number: int) -> str:
    """A scale's top in a few characters: 500, 2,000, 30k, 4M."""
    if number < 10_000:
        return f"{number:,}"
    if number < 1_000_000:
        return f"{number / 1_000:g}k"
    return f"{number / 1_000_000:g}M"


def _height(value: int, top: int) -> float:
    if value <= 0:
        return 0.0
    return max(_MIN_HEIGHT, value / top * _PLOT_HEIGHT)


def _label(start: datetime, chart: ChartRange) -> str:
    start = start.astimezone(UTC)
    return f"{start:%Y-%m-%d %H:%M}" if chart.per == "hour" else f"{start:%Y-%m-%d}"


def _tick(start: datetime, chart: ChartRange, index: int, count: int) -> str:
    # Hours on a fixed grid (00, 06, 12, 18); days from the newest back, every other one (every fourth
    # on a phone: the others are minor ticks).
    start = start.astimezone(UTC)
    if chart.per == "hour":
        return f"{start:%H:%M}" if start.hour % 6 == 0 else ""
    return f"{start:%b} {start.day}" if (count - 1 - index) % 2 == 0 else ""
