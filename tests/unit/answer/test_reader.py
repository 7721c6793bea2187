"""Tests of answer/reader.py: Claude Code's messages as answer events, and the stop scanner."""

from __future__ import annotations

from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)

from claude_code_api.answer.events import (
    ClaudeUsage,
    TextDelta,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
    TurnFinished,
)
from claude_code_api.answer.reader import ClaudeStreamReader, StopScanner


def stream_event(event: dict[str, Any], parent_tool_use_id: str | None = None) -> StreamEvent:
    return StreamEvent(uuid="ev-1", session_id="s-1", event=event, parent_tool_use_id=parent_tool_use_id)


def message_start(message_id: str, model: str = "claude-sonnet-4-5-20250929", parent: str | None = None):
    event = {
        "type": "message_start",
        "message": {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": []},
    }
    return stream_event(event, parent)


def block_start(index: int, block: dict[str, Any], parent: str | None = None) -> StreamEvent:
    return stream_event({"type": "content_block_start", "index": index, "content_block": block}, parent)


def text_delta(value: str, index: int = 0, parent: str | None = None) -> StreamEvent:
    event = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": value}}
    return stream_event(event, parent)


def json_delta(piece: str, index: int) -> StreamEvent:
    event = {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": piece},
    }
    return stream_event(event)


def message_delta(stop_reason: str, parent: str | None = None) -> StreamEvent:
    event = {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 3}}
    return stream_event(event, parent)


def streamed_text(
    message_id: str, *pieces: str, stop_reason: str | None = "end_turn", parent: str | None = None
):
    """The stream events of one upstream message of text; without a stop reason, a broken stream."""
    events = [message_start(message_id, parent=parent), block_start(0, {"type": "text", "text": ""}, parent)]
    events += [text_delta(piece, parent=parent) for piece in pieces]
    if stop_reason is not None:
        events += [
            stream_event({"type": "content_block_stop", "index": 0}, parent),
            message_delta(stop_reason, parent),
        ]
        events.append(stream_event({"type": "message_stop"}, parent))
    return events


def claude_message(*blocks: Any, message_id: str | None = None, parent: str | None = None, stop_reason=None):
    return AssistantMessage(
        content=list(blocks),
        model="claude-sonnet-4-5-20250929",
        parent_tool_use_id=parent,
        message_id=message_id,
        stop_reason=stop_reason,
    )


def result_message(**fields: Any) -> ResultMessage:
    values: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 420,
        "duration_api_ms": 400,
        "is_error": False,
        "num_turns": 1,
        "session_id": "s-1",
    }
    return ResultMessage(**{**values, **fields})


def read_all(reader: ClaudeStreamReader, messages: list[Any]) -> list[Any]:
    events: list[Any] = []
    for message in messages:
        events.extend(reader.read(message))
    return events


def texts(events: list[Any]) -> list[TextDelta]:
    return [event for event in events if isinstance(event, TextDelta)]


def test_text_deltas_from_stream_events_come_out_in_order():
    reader = ClaudeStreamReader()
    events = read_all(reader, streamed_text("msg_1", "Hel", "lo, ", "world"))
    assert events == [TextDelta("Hel"), TextDelta("lo, "), TextDelta("world")]
    assert reader.text == "Hello, world"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "no block 1"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
        {"type": "ping"},
    ],
)
def test_stream_events_without_answer_text_give_no_events(event):
    reader = ClaudeStreamReader()
    read_all(reader, streamed_text("msg_1", stop_reason=None))
    assert reader.read(stream_event(event)) == []
    assert reader.text == ""


def test_thinking_and_claude_code_tool_blocks_give_no_text():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            message_start("msg_1"),
            block_start(0, {"type": "thinking", "thinking": ""}),
            stream_event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "hm"},
                }
            ),
            block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}),
            json_delta('{"file_path": "/etc/hosts"}', 1),
            block_start(2, {"type": "text", "text": ""}),
            text_delta("Answer", index=2),
        ],
    )
    assert events == [TextDelta("Answer")]


def test_complete_message_after_a_full_stream_adds_nothing():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "Hello, ", "world"),
            claude_message(TextBlock("Hello, world"), message_id="msg_1"),
        ],
    )
    assert events == [TextDelta("Hello, "), TextDelta("world")]
    assert reader.text == "Hello, world"


def test_after_a_broken_stream_the_complete_message_supplies_the_missing_rest():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "The answer ", "is", stop_reason=None),
            # The stream broke here; the CLI asked again without streaming.
            claude_message(
                TextBlock("The answer is 42, as computed."), message_id="msg_2", stop_reason="end_turn"
            ),
            result_message(stop_reason="end_turn"),
        ],
    )
    assert texts(events) == [TextDelta("The answer "), TextDelta("is"), TextDelta(" 42, as computed.")]
    assert reader.text == "The answer is 42, as computed."
    assert events[-1].stop_reason == "end_turn"


def test_after_a_broken_stream_a_streamed_retry_passes_on_only_what_is_new():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "The answer ", "is", stop_reason=None),
            *streamed_text("msg_2", "The ", "answer is", " 42."),
        ],
    )
    assert events == [TextDelta("The answer "), TextDelta("is"), TextDelta(" 42.")]
    assert reader.text == "The answer is 42."


def test_text_of_successive_upstream_messages_adds_up():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "First part.", stop_reason="tool_use"),
            *streamed_text("msg_2", " Second part."),
        ],
    )
    assert events == [TextDelta("First part."), TextDelta(" Second part.")]
    assert reader.text == "First part. Second part."


def test_answer_without_stream_events_comes_whole_from_the_complete_message():
    reader = ClaudeStreamReader()
    events = reader.read(
        claude_message(
            ThinkingBlock(thinking="Let me think.", signature="sig"),
            TextBlock("Part one. "),
            ToolUseBlock(id="toolu_1", name="Read", input={}),
            TextBlock("Part two."),
            message_id="msg_1",
        )
    )
    assert "".join(event.text for event in texts(events)) == "Part one. Part two."
    assert events == texts(events)
    assert reader.text == "Part one. Part two."


def test_subagent_events_are_ignored():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_sub", "subagent text", stop_reason="max_tokens", parent="toolu_1"),
            claude_message(TextBlock("subagent whole answer"), message_id="msg_sub2", parent="toolu_1"),
            *streamed_text("msg_1", "Main ", "answer"),
            result_message(),
        ],
    )
    assert texts(events) == [TextDelta("Main "), TextDelta("answer")]
    assert reader.text == "Main answer"
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    assert finished.stop_reason == "end_turn"


def test_subagent_alone_sets_neither_model_nor_stop_reason():
    reader = ClaudeStreamReader()
    events = read_all(
        reader, [*streamed_text("msg_sub", "x", stop_reason="max_tokens", parent="toolu_1"), result_message()]
    )
    assert events == [TurnFinished(stop_reason=None, usage=ClaudeUsage(), cost_usd=None, model=None)]


def test_turn_finished_carries_usage_cost_and_model():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            SystemMessage(subtype="init", data={"model": "claude-sonnet-4-5-20250929", "session_id": "s-1"}),
            *streamed_text("msg_1", "Hi"),
            claude_message(TextBlock("Hi"), message_id="msg_1"),
            result_message(
                stop_reason="end_turn",
                total_cost_usd=0.0123,
                usage={
                    "input_tokens": 12,
                    "output_tokens": 5,
                    "cache_creation_input_tokens": 300,
                    "cache_read_input_tokens": 4000,
                },
                result="Hi",
            ),
        ],
    )
    assert events == [
        TextDelta("Hi"),
        TurnFinished(
            stop_reason="end_turn",
            usage=ClaudeUsage(
                input_tokens=12, output_tokens=5, cache_creation_tokens=300, cache_read_tokens=4000
            ),
            cost_usd=0.0123,
            model="claude-sonnet-4-5-20250929",
        ),
    ]


@pytest.mark.parametrize(
    ("messages", "model"),
    [
        ([SystemMessage(subtype="init", data={"model": "claude-opus-4-5"})], "claude-opus-4-5"),
        ([message_start("msg_1", model="claude-haiku-4-5")], "claude-haiku-4-5"),
        ([SystemMessage(subtype="status", data={"model": "claude-opus-4-5"})], None),
        ([], None),
    ],
)
def test_turn_finished_names_the_model_claude_code_reported(messages, model):
    reader = ClaudeStreamReader()
    events = read_all(reader, [*messages, result_message()])
    assert events[-1].model == model


@pytest.mark.parametrize(
    ("messages", "stop_reason"),
    [
        ([result_message(stop_reason="max_tokens")], "max_tokens"),
        ([*streamed_text("msg_1", "x", stop_reason="refusal"), result_message()], "refusal"),
        (
            [*streamed_text("msg_1", "x", stop_reason="end_turn"), result_message(stop_reason="max_tokens")],
            "max_tokens",
        ),
        ([result_message()], None),
    ],
)
def test_turn_finished_stop_reason_comes_from_the_result_else_from_the_stream(messages, stop_reason):
    reader = ClaudeStreamReader()
    assert read_all(reader, messages)[-1].stop_reason == stop_reason


def test_result_without_usage_counts_zero_tokens():
    finished = ClaudeStreamReader().read(result_message(usage=None, total_cost_usd=None))
    assert finished == [TurnFinished(stop_reason=None, usage=ClaudeUsage(), cost_usd=None, model=None)]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, ClaudeUsage(0, 0, 0, 0)),
        ({}, ClaudeUsage(0, 0, 0, 0)),
        ({"input_tokens": 3, "output_tokens": 4}, ClaudeUsage(3, 4, 0, 0)),
        (
            {
                "input_tokens": 3,
                "output_tokens": 4,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": 9,
                "server_tool_use": {"web_search_requests": 0},
            },
            ClaudeUsage(3, 4, 0, 9),
        ),
    ],
)
def test_claude_usage_reads_claude_token_counts(usage, expected):
    assert ClaudeUsage.from_claude(usage) == expected


def test_streamed_client_tool_call_becomes_tool_call_events():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            message_start("msg_1"),
            block_start(0, {"type": "text", "text": ""}),
            text_delta("Checking."),
            block_start(
                1, {"type": "tool_use", "id": "toolu_1", "name": "mcp__client__get_weather", "input": {}}
            ),
            json_delta('{"city": ', 1),
            json_delta('"Paris"}', 1),
            message_delta("tool_use"),
        ],
    )
    # The answer ends at the stop of the message that calls the client's functions: Claude Code waits
    # inside the calls for their results, and no result message comes until then.
    assert isinstance(events[-1], TurnFinished)
    assert events[-1].cost_usd is None
    assert events[:-1] == [
        TextDelta("Checking."),
        ToolCallStarted(0, "toolu_1", "get_weather"),
        ToolCallArguments(0, '{"city": '),
        ToolCallArguments(0, '"Paris"}'),
    ]
    assert reader.tool_calls == [ToolCallRecord("toolu_1", "get_weather", '{"city": "Paris"}')]
    assert events[-1].stop_reason == "tool_use"


def test_unstreamed_client_tool_call_comes_whole():
    reader = ClaudeStreamReader()
    events = reader.read(
        claude_message(
            ToolUseBlock(id="toolu_9", name="mcp__client__get_weather", input={"city": "Rome"}),
            message_id="m",
        )
    )
    assert events == [ToolCallStarted(0, "toolu_9", "get_weather"), ToolCallArguments(0, '{"city":"Rome"}')]


def test_structured_answer_is_the_json_given_to_the_structured_output_tool():
    reader = ClaudeStreamReader(structured=True)
    events = read_all(
        reader,
        [
            message_start("msg_1"),
            block_start(0, {"type": "text", "text": ""}),
            text_delta("Here is the JSON:"),
            block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "StructuredOutput", "input": {}}),
            json_delta('{"name": ', 1),
            json_delta('"Paris"}', 1),
            message_delta("tool_use"),
            result_message(stop_reason="tool_use", structured_output={"name": "Paris"}),
        ],
    )
    assert texts(events) == [TextDelta('{"name": '), TextDelta('"Paris"}')]
    assert events[-1] == TurnFinished(
        stop_reason="end_turn",
        usage=ClaudeUsage(),
        cost_usd=None,
        model="claude-sonnet-4-5-20250929",
        structured_output={"name": "Paris"},
    )


# --- stop sequences -----------------------------------------------------------------------------


def scan(stops: tuple[str, ...], deltas: list[str]) -> tuple[list[str], str, bool]:
    scanner = StopScanner(stops)
    released = [scanner.feed(delta) for delta in deltas]
    return released, scanner.flush(), scanner.stopped


@pytest.mark.parametrize(
    ("stops", "deltas", "answer", "stopped"),
    [
        (("END",), ["abcENDxyz"], "abc", True),
        (("END",), ["abcE", "NDxyz"], "abc", True),
        (("END",), ["abcEN", "Dxyz"], "abc", True),
        (("END",), ["ab E", "N", "D tail"], "ab ", True),
        (("END",), ["abc", "END"], "abc", True),
        (("STOP", "\n\n"), ["one\n", "\ntwo STOP"], "one", True),
        (("STOP", "\n\n"), ["one ST", "OP\n\ntwo"], "one ", True),
        (("later", "soon"), ["x soon y later"], "x ", True),
        (("later", "soon"), ["x lat", "er soon"], "x ", True),
        (("Hi",), ["Hi there"], "", True),
        (("Hello",), ["He", "llo world"], "", True),
        (("Hello",), ["", "Hello"], "", True),
        (("END",), ["abcEN"], "abcEN", False),
        (("END",), ["abE", "Xyz"], "abEXyz", False),
        (("END",), ["no stop here"], "no stop here", False),
        (("\n",), ["line one", " still", "\nline two"], "line one still", True),
        ((), ["a", "b", "END"], "abEND", False),
    ],
)
def test_stop_scanner_cuts_at_the_first_stop_across_delta_boundaries(stops, deltas, answer, stopped):
    released, rest, was_stopped = scan(stops, deltas)
    assert "".join(released) + rest == answer
    assert was_stopped is stopped
    for index in range(len(released)):
        so_far = "".join(released[: index + 1])
        assert answer.startswith(so_far)
        assert not any(stop in so_far for stop in stops)


def test_stop_scanner_holds_back_only_what_could_start_a_stop():
    scanner = StopScanner(("END", "<|stop|>"))
    assert scanner.feed("abcdefghij") == "abc"
    assert scanner.feed("k") == "d"
    assert scanner.flush() == "efghijk"
    assert scanner.flush() == ""


def test_stop_scanner_without_stops_releases_each_delta_at_once():
    scanner = StopScanner(())
    assert [scanner.feed(delta) for delta in ["He", "llo", ""]] == ["He", "llo", ""]
    assert scanner.flush() == ""
    assert scanner.stopped is False


def test_stop_scanner_releases_nothing_after_the_stop():
    scanner = StopScanner(("END",))
    assert scanner.feed("done END more") == "done "
    assert scanner.feed("even more text") == ""
    assert scanner.flush() == ""
    assert scanner.stopped is True


# --- OpenAI objects -----------------------------------------------------------------------------
