"""Tests of answer/loop.py: the answer loop over Claude Code's recorded messages (tests/replay.py)."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson
import pytest

from claude_code_api.answer.events import (
    AnswerEvent,
    AnswerFinished,
    AnswerStarted,
    ClaudeUsage,
    RunReport,
    TextDelta,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
)
from claude_code_api.answer.loop import answer_events, collect_answer, is_final_chunk, stream_answer
from claude_code_api.answer.request import NO_STRUCTURED_ANSWER
from claude_code_api.errors import (
    ClaudeUnavailableError,
    GatewayError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamRateLimitError,
)
from tests.replay import AN_HOUR_BEFORE_RESET, RECORDED_MODEL, ReplayRunner, replay_names, replay_spec

SCHEMA: dict[str, Any] = {"type": "object"}
PLAIN_TEXT = "Hello there! How can I help?"  # recorded in deltas of 4 characters: "Hell", "o th", ...
FAILED = ("broken_stream_then_error", "overloaded", "unauthorized", "usage_limit")


async def events_of(runner: ReplayRunner, **spec: Any) -> tuple[list[AnswerEvent], list[RunReport]]:
    reports: list[RunReport] = []
    async with contextlib.aclosing(answer_events(runner, replay_spec(**spec), reports.append)) as events:
        return [event async for event in events], reports


def texts(events: list[AnswerEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, TextDelta)]


def finished(events: list[AnswerEvent]) -> AnswerFinished:
    assert isinstance(events[-1], AnswerFinished)
    return events[-1]


def _spec_for(name: str) -> dict[str, Any]:
    return {"output_schema": SCHEMA} if name.startswith("structured") else {}


@pytest.mark.parametrize("name", [name for name in replay_names() if name not in FAILED])
async def test_every_answer_starts_once_finishes_once_and_is_reported_once(name: str) -> None:
    runner = ReplayRunner(name)

    events, reports = await events_of(runner, **_spec_for(name))

    assert events[0] == AnswerStarted(RECORDED_MODEL)
    assert [type(e) for e in events].count(AnswerStarted) == 1
    assert [type(e) for e in events].count(AnswerFinished) == 1
    assert reports == [finished(events).run]
    assert reports[0].status == 200
    assert reports[0].model == RECORDED_MODEL
    assert runner.closed == 1


@pytest.mark.parametrize(
    ("name", "text", "stop_reason", "usage", "cost"),
    [
        ("plain_text", PLAIN_TEXT, "end_turn", ClaudeUsage(21, 7), 0.000168),
        ("cached_usage", "Hello again.", "end_turn", ClaudeUsage(4, 3, 100, 900), 0.000702),
        ("upstream_stop_sequence", "one two ", "stop_sequence", ClaudeUsage(10, 5), 0.000105),
        ("thinking", "Forty-two.", "end_turn", ClaudeUsage(10, 5), 0.000105),
        # Cut for length: the answer ends at the upstream message's stop, before Claude Code asks the
        # model to go on; the cost is not known yet.
        ("max_tokens", "The answer was cut h", "max_tokens", ClaudeUsage(12, 5), None),
    ],
)
async def test_collected_answer_has_the_text_stop_reason_and_usage(
    name: str, text: str, stop_reason: str, usage: ClaudeUsage, cost: float | None
) -> None:
    reports: list[RunReport] = []

    answer = await collect_answer(ReplayRunner(name), replay_spec(), reports.append)

    assert answer.text == text
    assert answer.tool_calls == []
    assert answer.end.stop_reason == stop_reason
    assert answer.end.stop_sequence is None
    assert answer.end.run.usage == usage
    assert answer.end.run.cost_usd == pytest.approx(cost)
    assert reports == [answer.end.run]


async def test_text_streams_in_the_recorded_deltas() -> None:
    events, _ = await events_of(ReplayRunner("long_text"))

    deltas = texts(events)
    assert len(deltas) == 41
    assert {len(delta) for delta in deltas[:-1]} == {7}
    assert "".join(deltas).startswith("Once upon a time, in a quiet town by the sea")


async def test_thinking_never_reaches_the_answer() -> None:
    events, _ = await events_of(ReplayRunner("thinking"))

    assert texts(events) == ["Forty-", "two."]


@pytest.mark.parametrize(
    ("stops", "text", "matched"),
    [
        # Each cuts across the recorded deltas "Hell" "o th" "ere!" " How" " can" " I h" "elp?".
        (("lo th",), "Hel", "lo th"),
        (("ere! How",), "Hello th", "ere! How"),
        (("elp?",), "Hello there! How can I h", "elp?"),
        (("Hello",), "", "Hello"),
        # Longer than the text seen when it starts: nothing of it may go out before it is decided.
        (("Hello there!",), "", "Hello there!"),
        (("o there! How can I",), "Hell", "o there! How can I"),
        # The first in the text wins, whatever the order given.
        (("can", "there"), "Hello ", "there"),
        (("xyz", "I h"), "Hello there! How can ", "I h"),
    ],
)
async def test_stop_sequences_cut_across_deltas(stops: tuple[str, ...], text: str, matched: str) -> None:
    events, reports = await events_of(ReplayRunner("plain_text"), stop_sequences=stops)

    assert "".join(texts(events)) == text
    assert all(texts(events))  # no empty deltas
    end = finished(events)
    assert (end.stop_reason, end.stop_sequence) == ("stop_sequence", matched)
    # The run itself went on to its end: usage and cost are the whole run's.
    assert reports[0].usage == ClaudeUsage(21, 7)


async def test_text_that_may_start_a_stop_sequence_is_held_back_until_decided() -> None:
    events, _ = await events_of(ReplayRunner("plain_text"), stop_sequences=("Hello world",))

    # It never matches, but up to len(stop) - 1 = 10 characters wait for the next delta to decide:
    # nothing goes out before the third delta, and the last 10 characters only at the end.
    assert texts(events)[0] == "He"
    assert texts(events)[-1] == PLAIN_TEXT[-10:]
    assert "".join(texts(events)) == PLAIN_TEXT
    assert finished(events).stop_reason == "end_turn"
    assert finished(events).stop_sequence is None


async def test_a_stop_sequence_that_never_appears_releases_everything_at_the_end() -> None:
    events, _ = await events_of(ReplayRunner("long_text"), stop_sequences=("dragon",))

    assert "".join(texts(events)).endswith("exactly as loud as before.")
    assert finished(events).stop_reason == "end_turn"


async def test_one_tool_call_streams_its_arguments_by_index() -> None:
    events, _ = await events_of(ReplayRunner("tool_call"))

    assert events[1] == ToolCallStarted(0, "toolu_weather_1", "get_weather")
    pieces = [event for event in events if isinstance(event, ToolCallArguments)]
    assert {piece.index for piece in pieces} == {0}
    assert len(pieces) == 6
    assert orjson.loads("".join(piece.json for piece in pieces)) == {"city": "Paris", "unit": "celsius"}
    assert finished(events).stop_reason == "tool_use"


async def test_parallel_tool_calls_follow_the_text_each_with_its_index() -> None:
    answer = await collect_answer(ReplayRunner("parallel_tool_calls"), replay_spec(), lambda run: None)

    assert answer.text == "Let me check both."
    assert answer.tool_calls == [
        ToolCallRecord("toolu_weather_1", "get_weather", '{"city": "Paris"}'),
        ToolCallRecord("toolu_time_2", "get_time", '{"city": "Paris"}'),
    ]
    assert answer.end.stop_reason == "tool_use"
    assert answer.end.run.usage == ClaudeUsage(60, 30)


async def test_tool_calls_after_a_stop_sequence_are_left_out() -> None:
    events, _ = await events_of(ReplayRunner("parallel_tool_calls"), stop_sequences=("check",))

    assert "".join(texts(events)) == "Let me "
    assert not [e for e in events if isinstance(e, ToolCallStarted | ToolCallArguments)]
    assert finished(events).stop_reason == "stop_sequence"


@pytest.mark.parametrize("name", ["structured_output", "structured_output_retried"])
async def test_structured_output_is_released_whole_once_checked(name: str) -> None:
    events, _ = await events_of(ReplayRunner(name), output_schema=SCHEMA)

    # One delta, after Claude Code checked it; the attempt it rejected ("celsius": "warm") never shows.
    assert texts(events) == ['{"celsius":22,"city":"Paris"}']
    assert finished(events).stop_reason == "end_turn"


async def test_a_run_without_a_structured_answer_fails_and_records_its_cost() -> None:
    reports: list[RunReport] = []

    with pytest.raises(UpstreamError, match=re.escape(NO_STRUCTURED_ANSWER)):
        await collect_answer(ReplayRunner("plain_text"), replay_spec(output_schema=SCHEMA), reports.append)

    [report] = reports
    assert report.status == UpstreamError.status
    assert report.usage == ClaudeUsage(21, 7)
    assert report.cost_usd == pytest.approx(0.000168)


async def test_a_broken_stream_is_not_repeated_by_the_retry_that_follows() -> None:
    # The stream broke after "Hell" "o th"; the CLI asked again without streaming and got the whole
    # text, of which only what goes beyond "Hello th" is new.
    events, reports = await events_of(ReplayRunner("broken_stream_retried"))

    assert texts(events) == ["Hell", "o th", "ere, general Kenobi."]
    assert finished(events).stop_reason == "end_turn"
    assert reports[0].usage == ClaudeUsage(25, 10)


@pytest.mark.parametrize(
    ("name", "error_type", "status", "retry_after"),
    [
        ("unauthorized", UpstreamAuthenticationError, 502, None),
        ("usage_limit", UpstreamRateLimitError, 429, 3600.0),
        ("overloaded", ClaudeUnavailableError, 503, 5),
        ("broken_stream_then_error", UpstreamError, 502, None),
    ],
)
async def test_a_failed_run_raises_its_error_and_is_reported_with_it(
    name: str, error_type: type[GatewayError], status: int, retry_after: float | None
) -> None:
    reports: list[RunReport] = []

    with pytest.raises(error_type) as raised:
        await collect_answer(ReplayRunner(name), replay_spec(), reports.append)

    assert raised.value.status == status
    assert raised.value.retry_after == retry_after
    [report] = reports
    assert (report.status, report.error, report.usage) == (status, raised.value, ClaudeUsage())


async def test_the_usage_limit_error_says_when_the_subscription_resets() -> None:
    runner = ReplayRunner("usage_limit", now=lambda: AN_HOUR_BEFORE_RESET - 60)

    with pytest.raises(UpstreamRateLimitError, match="resets at 2100-01-01T00:00:00") as raised:
        await collect_answer(runner, replay_spec(), lambda run: None)

    assert raised.value.retry_after == 3660.0


# --- stream_answer -------------------------------------------------------------------------------


class RecordingEncoder:
    """A StreamEncoder that writes each call as one line, to see what the loop asked of it."""

    def start(self, model: str) -> bytes:
        return f"start {model}\n".encode()

    def text(self, text: str) -> bytes:
        return f"text {text!r}\n".encode()

    def tool_call_start(self, event: ToolCallStarted) -> bytes:
        return f"call {event.index} {event.call_id} {event.name}\n".encode()

    def tool_call_arguments(self, event: ToolCallArguments) -> bytes:
        return f"args {event.index} {event.json!r}\n".encode()

    def finish(self, stop_reason: str | None, stop_sequence: str | None, usage: ClaudeUsage) -> bytes:
        return f"finish {stop_reason} {stop_sequence} {usage.input_tokens}+{usage.output_tokens}\n".encode()

    def error(self, error: GatewayError) -> bytes:
        return f"error {error.status} {error.message}\n".encode()


async def chunks_of(name: str, **spec: Any) -> list[bytes]:
    stream = await stream_answer(
        ReplayRunner(name), replay_spec(**spec), RecordingEncoder(), lambda run: None
    )
    return [chunk async for chunk in stream]


async def test_a_stream_encodes_each_event_and_marks_the_final_chunk() -> None:
    chunks = await chunks_of("parallel_tool_calls")

    assert b"".join(chunks).decode().splitlines() == [
        f"start {RECORDED_MODEL}",
        "text 'Let m'",
        "text 'e che'",
        "text 'ck bo'",
        "text 'th.'",
        "call 0 toolu_weather_1 get_weather",
        "args 0 '{\"cit'",
        "args 0 'y\": \"'",
        "args 0 'Paris'",
        "args 0 '\"}'",
        "call 1 toolu_time_2 get_time",
        "args 1 '{\"cit'",
        "args 1 'y\": \"'",
        "args 1 'Paris'",
        "args 1 '\"}'",
        "finish tool_use None 60+30",
    ]
    assert [is_final_chunk(chunk) for chunk in chunks] == [False] * 15 + [True]


@pytest.mark.parametrize("name", ["unauthorized", "usage_limit", "overloaded"])
async def test_a_failure_before_the_first_byte_is_raised_by_stream_answer(name: str) -> None:
    # Raised before any byte is sent: the route answers with an HTTP error.
    with pytest.raises(GatewayError):
        await stream_answer(ReplayRunner(name), replay_spec(), RecordingEncoder(), lambda run: None)


async def test_a_failure_after_the_first_byte_ends_the_stream_with_the_error_event() -> None:
    chunks = await chunks_of("broken_stream_then_error")

    assert b"".join(chunks).decode().splitlines() == [
        f"start {RECORDED_MODEL}",
        "text 'Hell'",
        "text 'o th'",
        "error 502 Claude's API failed (upstream HTTP 500).",
    ]
    assert not any(is_final_chunk(chunk) for chunk in chunks)


async def test_a_stream_closed_early_ends_the_run() -> None:
    runner = ReplayRunner("long_text")
    stream = await stream_answer(runner, replay_spec(), RecordingEncoder(), lambda run: None)

    assert await anext(stream) == f"start {RECORDED_MODEL}\n".encode()
    await stream.aclose()  # type: ignore[attr-defined]

    assert runner.closed == 1
