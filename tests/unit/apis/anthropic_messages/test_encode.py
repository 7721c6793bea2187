"""Tests of apis/anthropic_messages/encode.py: the answer as a Message, Anthropic's SSE events and errors."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import orjson
import pytest
from anthropic._models import construct_type
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from claude_code_api.answer.events import ClaudeUsage, ToolCallArguments, ToolCallRecord, ToolCallStarted
from claude_code_api.apis.anthropic_messages.encode import (
    MessageStreamEncoder,
    anthropic_error,
    anthropic_message,
)
from claude_code_api.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    UpstreamTimeoutError,
)
from tests.replay import assert_golden, replay_answer, replay_names, replay_stream
from tests.wire_clients import JSON, anthropic_client


def test_message_has_anthropics_shape():
    calls = [
        ToolCallRecord("toolu_1", "get_weather", '{"city": "Paris"}'),
        ToolCallRecord("toolu_2", "get_weather", '{"ci'),
    ]

    body = anthropic_message(
        message_id="msg_1",
        model="claude-sonnet-4-5",
        text="Let me look.",
        tool_calls=calls,
        stop_reason="tool_use",
        stop_sequence=None,
        usage=ClaudeUsage(input_tokens=10, output_tokens=5, cache_creation_tokens=2, cache_read_tokens=3),
    )

    message = Message.model_validate(body)
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert message.content[2].input == {}  # type: ignore[union-attr]  # cut short: the stop reason tells
    assert body["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 2,
        "cache_read_input_tokens": 3,
        "output_tokens": 5,
    }


@pytest.mark.parametrize(
    ("claude", "anthropic_reason"), [(None, "end_turn"), ("max_tokens", "max_tokens"), ("odd", "end_turn")]
)
def test_stop_reason_is_passed_on(claude: str | None, anthropic_reason: str):
    body = anthropic_message(
        message_id="m",
        model="m",
        text="",
        tool_calls=[],
        stop_reason=claude,
        stop_sequence=None,
        usage=ClaudeUsage(),
    )

    assert body["stop_reason"] == anthropic_reason
    assert body["content"] == []


def streamed(encoder: MessageStreamEncoder) -> bytes:
    return b"".join(
        [
            encoder.start("claude-sonnet-4-5"),
            encoder.text("Let me "),
            encoder.text("look."),
            encoder.tool_call_start(ToolCallStarted(0, "toolu_1", "get_weather")),
            encoder.tool_call_arguments(ToolCallArguments(0, '{"city": ')),
            encoder.tool_call_start(ToolCallStarted(1, "toolu_2", "get_weather")),
            encoder.tool_call_arguments(ToolCallArguments(1, '{"city": "Rome"}')),
            encoder.tool_call_arguments(ToolCallArguments(0, '"Paris"}')),
            encoder.finish("tool_use", None, ClaudeUsage(input_tokens=10, output_tokens=5)),
        ]
    )


def test_stream_is_exactly_anthropics_event_sequence():
    raw = MessageStreamEncoder("msg_1").start("claude-sonnet-4-5") + MessageStreamEncoder("msg_1").finish(
        "end_turn", None, ClaudeUsage(input_tokens=1, output_tokens=2)
    )

    assert raw == (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta",'
        b'"delta":{"stop_reason":"end_turn","stop_sequence":null},'
        b'"usage":{"input_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


def test_stream_reads_back_through_anthropics_own_parser():
    events = list(SSEDecoder().iter_bytes(iter([streamed(MessageStreamEncoder("msg_1"))])))
    snapshot = None
    json_buffers: dict[int, bytes] = {}
    for event in events:
        assert event.event == event.json()["type"]
        parsed = construct_type(type_=RawMessageStreamEvent, value=event.json())
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_buffers)  # type: ignore[arg-type]

    assert snapshot is not None
    assert [event.event for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [block.type for block in snapshot.content] == ["text", "tool_use", "tool_use"]
    assert snapshot.content[0].text == "Let me look."  # type: ignore[union-attr]
    assert [block.input for block in snapshot.content[1:]] == [{"city": "Paris"}, {"city": "Rome"}]  # type: ignore[union-attr]
    assert (snapshot.stop_reason, snapshot.usage.input_tokens, snapshot.usage.output_tokens) == (
        "tool_use",
        10,
        5,
    )


# --- errors and models ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequestError("bad"), "invalid_request_error"),
        (ModelNotFoundError("gpt-9"), "not_found_error"),
        (RateLimitError("slow down"), "rate_limit_error"),
        (UpstreamTimeoutError("late"), "timeout_error"),
        (GatewayError("boom"), "api_error"),
    ],
)
def test_errors_take_anthropics_shape(error: GatewayError, kind: str):
    assert anthropic_error(error) == {"type": "error", "error": {"type": kind, "message": error.message}}


def test_stream_error_is_an_error_event():
    raw = MessageStreamEncoder("m").error(UpstreamTimeoutError("late"))

    assert (
        raw == b'event: error\ndata: {"type":"error","error":{"type":"timeout_error","message":"late"}}\n\n'
    )


# --- through the replay runner: recorded Claude Code runs, encoded and read back by `anthropic` ----

MESSAGE_ID = "msg_replay"
QUESTION: Any = [{"role": "user", "content": "recorded"}]
FAILED_BEFORE_ANSWERING = ("overloaded", "unauthorized", "usage_limit")
ANSWERED = [
    name for name in replay_names() if name not in (*FAILED_BEFORE_ANSWERING, "broken_stream_then_error")
]


def spec_for(name: str) -> dict[str, Any]:
    return {"output_schema": {"type": "object"}} if name.startswith("structured") else {}


@pytest.mark.parametrize("name", [*ANSWERED, "broken_stream_then_error"])
async def test_replayed_stream_is_byte_for_byte_the_golden_file(name: str) -> None:
    body = await replay_stream(name, MessageStreamEncoder(MESSAGE_ID), **spec_for(name))

    assert_golden(f"anthropic_messages/{name}.sse", body)


@pytest.mark.parametrize("name", ANSWERED)
async def test_replayed_stream_read_by_anthropic_equals_the_whole_message(name: str) -> None:
    body = await replay_stream(name, MessageStreamEncoder(MESSAGE_ID), **spec_for(name))
    answer = await replay_answer(name, **spec_for(name))
    whole = Message.model_validate(MessageStreamEncoder(MESSAGE_ID).whole(answer))

    with anthropic_client(body).messages.stream(model="sonnet", max_tokens=100, messages=QUESTION) as stream:
        streamed = stream.get_final_message()

    assert streamed.model_dump() == whole.model_dump()


@pytest.mark.parametrize(
    ("name", "spec", "content", "stop_reason", "stop_sequence", "usage"),
    [
        ("plain_text", {}, [("text", "Hello there! How can I help?")], "end_turn", None, (21, 0, 0, 7)),
        ("cached_usage", {}, [("text", "Hello again.")], "end_turn", None, (4, 100, 900, 3)),
        ("max_tokens", {}, [("text", "The answer was cut h")], "max_tokens", None, (12, 0, 0, 5)),
        ("upstream_stop_sequence", {}, [("text", "one two ")], "stop_sequence", None, (10, 0, 0, 5)),
        (
            "plain_text",
            {"stop_sequences": ("elp?",)},
            [("text", "Hello there! How can I h")],
            "stop_sequence",
            "elp?",
            (21, 0, 0, 7),
        ),
        (
            "tool_call",
            {},
            [("tool_use", {"city": "Paris", "unit": "celsius"})],
            "tool_use",
            None,
            (50, 0, 0, 20),
        ),
        (
            "parallel_tool_calls",
            {},
            [
                ("text", "Let me check both."),
                ("tool_use", {"city": "Paris"}),
                ("tool_use", {"city": "Paris"}),
            ],
            "tool_use",
            None,
            (60, 0, 0, 30),
        ),
        (
            "structured_output",
            {"output_schema": {}},
            [("text", '{"celsius":22,"city":"Paris"}')],
            "end_turn",
            None,
            (10, 0, 0, 5),
        ),
    ],
)
async def test_replayed_whole_message_has_content_stop_reason_and_usage(
    name: str,
    spec: dict[str, Any],
    content: list[tuple[str, Any]],
    stop_reason: str,
    stop_sequence: str | None,
    usage: tuple[int, int, int, int],
) -> None:
    message = Message.model_validate(
        MessageStreamEncoder(MESSAGE_ID).whole(await replay_answer(name, **spec))
    )

    assert [(b.type, b.text if b.type == "text" else b.input) for b in message.content] == content  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == (stop_reason, stop_sequence)
    counts = message.usage
    assert (
        counts.input_tokens,
        counts.cache_creation_input_tokens,
        counts.cache_read_input_tokens,
        counts.output_tokens,
    ) == usage


async def test_replayed_tool_calls_are_blocks_with_their_own_indexes() -> None:
    body = await replay_stream("parallel_tool_calls", MessageStreamEncoder(MESSAGE_ID))

    events = list(
        anthropic_client(body).messages.create(model="s", max_tokens=9, messages=QUESTION, stream=True)
    )

    starts = [e for e in events if e.type == "content_block_start"]
    assert [(e.index, e.content_block.type) for e in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
    ]
    assert [getattr(e.content_block, "name", None) for e in starts] == [None, "get_weather", "get_time"]
    pieces = [e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert {e.index for e in pieces} == {1, 2}


@pytest.mark.parametrize(
    ("name", "error_type", "status"),
    [
        ("unauthorized", anthropic.InternalServerError, 502),
        ("usage_limit", anthropic.RateLimitError, 429),
        ("overloaded", anthropic.InternalServerError, 503),
    ],
)
async def test_replayed_failure_before_the_first_byte_is_an_http_error(
    name: str, error_type: type[anthropic.APIStatusError], status: int
) -> None:
    with pytest.raises(GatewayError) as raised:
        await replay_stream(name, MessageStreamEncoder(MESSAGE_ID))
    error = raised.value
    client = anthropic_client(
        orjson.dumps(anthropic_error(error)), status=error.status, headers=JSON | error.headers()
    )

    with pytest.raises(error_type) as seen:
        client.messages.create(model="sonnet", max_tokens=100, messages=QUESTION, stream=True)

    assert seen.value.status_code == status
    assert seen.value.body == anthropic_error(error)


async def test_replayed_failure_after_the_first_byte_is_an_error_event_anthropic_raises() -> None:
    body = await replay_stream("broken_stream_then_error", MessageStreamEncoder(MESSAGE_ID))

    stream = anthropic_client(body).messages.create(
        model="sonnet", max_tokens=100, messages=QUESTION, stream=True
    )
    texts: list[str] = []

    def read() -> None:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                texts.append(event.delta.text)

    with pytest.raises(anthropic.APIStatusError, match=re.escape("Claude's API failed (upstream HTTP 500).")):
        read()

    assert texts == ["Hell", "o th"]
