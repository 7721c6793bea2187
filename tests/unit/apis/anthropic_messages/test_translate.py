"""Tests of apis/anthropic_messages/translate.py and fields.py: Messages requests to Claude requests."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from claude_code_api.answer.request import ClaudeRequest, ClaudeTurn
from claude_code_api.answer.tools import ClientTool
from claude_code_api.apis.anthropic_messages.translate import translate_messages_request
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import (
    InvalidRequestError,
    UnsupportedParameterError,
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

    assert (*claude.history, ClaudeTurn("user", claude.prompt))[1:] == (
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
    ("thinking", "carried"),
    [
        (None, None),
        ({"type": "adaptive"}, {"type": "adaptive"}),
        ({"type": "adaptive", "display": "omitted"}, {"type": "adaptive"}),
        ({"type": "between_tools"}, {"type": "adaptive"}),
        ({"type": "enabled", "budget_tokens": 2048}, {"type": "enabled", "budget_tokens": 2048}),
        (
            {"type": "enabled", "budget_tokens": 2048, "display": "summarized"},
            {"type": "enabled", "budget_tokens": 2048},
        ),
        ({"type": "disabled"}, {"type": "disabled"}),
    ],
)
def test_thinking_is_carried_as_claude_codes_thinking_option(thinking, carried):
    fields = {} if thinking is None else {"thinking": thinking}
    assert translate(**fields).thinking == carried


def test_the_effort_on_claude_codes_system_message_is_the_runs_effort():
    system = {"role": "system", "content": "# Environment", "output_config": {"effort": "medium"}}
    assert translate(messages=[system, *HELLO]).effort == "medium"
    assert translate(messages=[system, *HELLO], output_config={"effort": "high"}).effort == "high"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
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
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
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
        ({"model": "sonnet", "max_tokens": 2**64, "messages": HELLO}, "Invalid value for 'max_tokens'"),
        ({"model": "sonnet", "max_tokens": 10**7, "messages": HELLO}, "Invalid value for 'max_tokens'"),
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
        parse_messages_request(json.dumps(body).encode())  # json: 2**64 is past orjson's range

    assert caught.value.message.startswith(message)


# --- answers -------------------------------------------------------------------------------------
