"""Tests of apis/anthropic_messages/encode.py: the answer as a Message, Anthropic's SSE events and errors."""

from __future__ import annotations

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
