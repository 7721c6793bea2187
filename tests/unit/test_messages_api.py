"""Tests of messages_api.py: Anthropic Messages requests to Claude requests, and answers back as
Anthropic's Message, SSE events (read by the `anthropic` package's own parser) and errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic._models import construct_type
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from claude_code_api.answer.events import ClaudeUsage, ToolCallArguments, ToolCallRecord, ToolCallStarted
from claude_code_api.answer.request import TOOL_RESULTS_PROMPT, ClaudeRequest, ClaudeTurn
from claude_code_api.answer.tools import ClientTool
from claude_code_api.apis.anthropic_messages.encode import (
    MessageStreamEncoder,
    anthropic_error,
    anthropic_message,
)
from claude_code_api.apis.anthropic_messages.models import anthropic_model_list, display_name
from claude_code_api.apis.anthropic_messages.translate import translate_messages_request
from claude_code_api.catalog import ModelChoice, model_ids
from claude_code_api.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    UnsupportedParameterError,
    UpstreamTimeoutError,
)
from claude_code_api.routes.messages import parse_messages_request

SONNET = ModelChoice(requested="claude-sonnet-4-5", claude_model="claude-sonnet-4-5")
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
HELLO = [{"role": "user", "content": "Hello"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def translate(fetch_image_urls: bool = False, **fields: Any) -> ClaudeRequest:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": HELLO, **fields}
    return translate_messages_request(
        parse_messages_request(orjson.dumps(body)), SONNET, fetch_image_urls=fetch_image_urls
    )


# --- requests ------------------------------------------------------------------------------------


def test_plain_request_becomes_a_prompt_with_its_limits():
    claude = translate(stop_sequences=["END", ""], output_config={"effort": "high"})

    assert claude == ClaudeRequest(
        model="claude-sonnet-4-5",
        system_prompt=None,
        history=(),
        prompt=({"type": "text", "text": "Hello"},),
        max_output_tokens=100,
        stop_sequences=("END",),
        effort="high",
    )


@pytest.mark.parametrize(
    "system",
    [
        "Be brief.\n\nAnswer in French.",
        [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}},
        ],
    ],
)
def test_system_as_text_or_blocks_becomes_the_system_prompt(system: Any):
    assert translate(system=system).system_prompt == "Be brief.\n\nAnswer in French."


def test_system_messages_inside_messages_join_the_system_prompt():
    claude = translate(system="Be brief.", messages=[{"role": "system", "content": "No emoji."}, *HELLO])

    assert claude.system_prompt == "Be brief.\n\nNo emoji."
    assert claude.history == ()


def test_conversation_keeps_its_turns_and_merges_repeated_roles():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "I am Ada."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "...", "signature": "s"},
                {"type": "text", "text": "Hello Ada."},
            ],
        },
        {"role": "user", "content": "Who am I?"},
    ]

    claude = translate(messages=messages)

    assert claude.history == (
        ClaudeTurn("user", ({"type": "text", "text": "Hi"}, {"type": "text", "text": "I am Ada."})),
        ClaudeTurn("assistant", ({"type": "text", "text": "Hello Ada."},)),
    )
    assert claude.prompt == ({"type": "text", "text": "Who am I?"},)


def test_tool_use_and_results_reach_claude_with_the_client_prefix():
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "22 °C"}],
                    "is_error": True,
                },
            ],
        },
    ]

    claude = translate(messages=messages, tools=[WEATHER])

    assert claude.history[1:] == (
        ClaudeTurn(
            "assistant",
            (
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "mcp__client__get_weather",
                    "input": {"city": "Paris"},
                },
            ),
        ),
        ClaudeTurn(
            "user",
            (
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "22 °C"}],
                    "is_error": True,
                },
            ),
        ),
    )
    assert claude.prompt == ({"type": "text", "text": TOOL_RESULTS_PROMPT},)
    assert claude.client_tools == (
        ClientTool("get_weather", "Current weather of a city.", WEATHER["input_schema"]),
    )


@pytest.mark.parametrize(
    ("tool_choice", "instruction"),
    [
        ({"type": "auto"}, None),
        ({"type": "any"}, "You must answer by calling one or more of the available tools."),
        (
            {"type": "tool", "name": "get_weather"},
            "You must answer by calling the tool mcp__client__get_weather.",
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, "Call at most one tool in your answer."),
    ],
)
def test_tool_choice_becomes_an_instruction(tool_choice: Any, instruction: str | None):
    assert translate(tools=[WEATHER], tool_choice=tool_choice).system_prompt == instruction


def test_tool_choice_none_offers_no_tools():
    assert translate(tools=[WEATHER], tool_choice={"type": "none"}).client_tools == ()


def test_output_format_becomes_the_output_schema():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}

    assert (
        translate(output_config={"format": {"type": "json_schema", "schema": schema}}).output_schema == schema
    )


def test_images_become_image_blocks():
    messages = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Compare."},
            ],
        }
    ]

    claude = translate(messages=messages, fetch_image_urls=True)

    assert claude.prompt[:2] == (
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    )


def test_adaptive_thinking_and_sampling_parameters_are_accepted():
    claude = translate(
        thinking={"type": "adaptive"}, temperature=0.5, top_p=0.9, top_k=10, metadata={"user_id": "u"}
    )

    assert claude.prompt == ({"type": "text", "text": "Hello"},)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking"),
        ({"thinking": {"type": "disabled"}}, "thinking"),
        ({"thinking": {"type": "adaptive", "display": "summarized"}}, "thinking.display"),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "Hi", "citations": [{"type": "char_location"}]}],
                    }
                ]
            },
            "messages[0].content[0].citations",
        ),
    ],
)
def test_unsupported_feature_is_refused_by_name(fields: dict[str, Any], param: str):
    with pytest.raises(UnsupportedParameterError) as caught:
        translate(**fields)

    assert caught.value.param == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"messages": [*HELLO, {"role": "assistant", "content": "Sure,"}]}, "messages"),
        ({"messages": [{"role": "user", "content": " "}]}, "messages[0].content"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    *HELLO,
                    {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
                    *HELLO,
                ]
            },
            "messages[1].content[0]",
        ),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_time"}}, "tool_choice.name"),
    ],
)
def test_invalid_conversation_is_a_400_naming_the_place(fields: dict[str, Any], param: str):
    with pytest.raises(InvalidRequestError) as caught:
        translate(**fields)

    assert caught.value.param == param


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "sonnet", "messages": HELLO}, "Missing required parameter: 'max_tokens'."),
        ({"model": "sonnet", "max_tokens": 0, "messages": HELLO}, "Invalid value for 'max_tokens'"),
        (
            {"model": "sonnet", "max_tokens": 5, "messages": HELLO, "n": 2},
            "Unrecognized request argument supplied: n",
        ),
        (
            {
                "model": "sonnet",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "Missing required parameter: 'messages[0].content[0].text'.",
        ),
        (
            {"model": "sonnet", "max_tokens": 5, "messages": HELLO, "tools": [{"name": "x"}]},
            "Missing required parameter: 'tools[0].input_schema'.",
        ),
    ],
)
def test_malformed_body_is_a_400_naming_the_parameter(body: dict[str, Any], message: str):
    with pytest.raises(InvalidRequestError) as caught:
        parse_messages_request(orjson.dumps(body))

    assert caught.value.message.startswith(message)


# --- answers -------------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku"),
        ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
        ("claude-opus-4-1-20250805", "Claude Opus 4.1"),
        ("sonnet", "Claude Sonnet (latest)"),
        ("gpt-4", "gpt-4 (alias of opus)"),
    ],
)
def test_models_have_readable_names(model_id: str, name: str):
    assert display_name(model_id) == name


def test_model_list_pages_by_cursor():
    ids = model_ids()

    first = anthropic_model_list(ids, limit=2)
    after = anthropic_model_list(ids, limit=2, after_id=first["last_id"])
    before = anthropic_model_list(ids, limit=5, before_id=after["first_id"])
    everything = anthropic_model_list(ids, limit=1000)

    assert [m["id"] for m in first["data"]] == ids[:2]
    assert first["has_more"] is True
    assert [m["id"] for m in after["data"]] == ids[2:4]
    assert [m["id"] for m in before["data"]] == ids[:2]
    assert before["has_more"] is False
    assert len(everything["data"]) == len(ids)
    assert everything["has_more"] is False
    assert (everything["first_id"], everything["last_id"]) == (ids[0], ids[-1])


def test_model_list_refuses_an_unknown_cursor():
    with pytest.raises(InvalidRequestError) as caught:
        anthropic_model_list(model_ids(), after_id="claude-9")

    assert caught.value.param == "after_id"
