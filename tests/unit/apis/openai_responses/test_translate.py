"""Tests of apis/openai_responses/translate.py and fields.py: Responses requests to Claude requests."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from claude_code_api.answer.request import ClaudeRequest, ClaudeTurn
from claude_code_api.answer.tools import ClientTool
from claude_code_api.apis.openai_responses.translate import translate_responses_request
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError
from claude_code_api.routes.responses import parse_responses_request

SONNET = ModelChoice(requested="sonnet", claude_model="sonnet")


WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def parse(**fields: Any) -> Any:
    return parse_responses_request(orjson.dumps({"model": "sonnet", "input": "Hello", **fields}))


def translate(**fields: Any) -> ClaudeRequest:
    return translate_responses_request(parse(**fields), SONNET)


def test_text_input_with_instructions_becomes_a_prompt():
    claude = translate(instructions="Be brief.", max_output_tokens=64, reasoning={"effort": "minimal"})

    assert claude == ClaudeRequest(
        model="sonnet",
        system_prompt="Be brief.",
        history=(),
        prompt=({"type": "text", "text": "Hello"},),
        max_output_tokens=64,
        effort="low",
    )


def test_message_items_replay_the_conversation():
    claude = translate(
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "I am Ada."}]},
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello Ada.", "annotations": [], "logprobs": []}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "user", "content": "Who am I?"},
        ]
    )

    assert claude.system_prompt == "Answer in French."
    assert claude.history == (
        ClaudeTurn("user", ({"type": "text", "text": "I am Ada."},)),
        ClaudeTurn("assistant", ({"type": "text", "text": "Hello Ada."},)),
    )
    assert claude.prompt == ({"type": "text", "text": "Who am I?"},)


def test_function_call_items_become_tool_use_and_tool_results():
    claude = translate(
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather?"},
            {
                "type": "function_call",
                "call_id": "toolu_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "toolu_2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "toolu_1", "output": "22 °C"},
            {
                "type": "function_call_output",
                "call_id": "toolu_2",
                "output": [{"type": "input_text", "text": "25 °C"}],
            },
        ],
    )

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
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "mcp__client__get_weather",
                    "input": {"city": "Rome"},
                },
            ),
        ),
        ClaudeTurn(
            "user",
            (
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22 °C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "25 °C"}],
                },
            ),
        ),
    )
    assert claude.client_tools == (
        ClientTool("get_weather", "Current weather of a city.", WEATHER["parameters"]),
    )


@pytest.mark.parametrize(
    ("fields", "instruction"),
    [
        ({"tool_choice": "auto"}, None),
        ({"tool_choice": "required"}, "You must answer by calling one or more of the available tools."),
        (
            {"tool_choice": {"type": "function", "name": "get_weather"}},
            "You must answer by calling the tool mcp__client__get_weather.",
        ),
        ({"parallel_tool_calls": False}, "Call at most one tool in your answer."),
    ],
)
def test_tool_choice_becomes_an_instruction(fields: dict[str, Any], instruction: str | None):
    assert translate(tools=[WEATHER], **fields).system_prompt == instruction


def test_namespace_tools_are_flattened_and_their_calls_replayed_by_the_flat_name():
    agents = {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "Sub-agents.",
        "tools": [
            {"type": "function", "name": "close_agent", "description": "Close one.", "parameters": {}},
            {"type": "custom", "name": "free_form"},
        ],
    }
    call = {
        "type": "function_call",
        "call_id": "c1",
        "name": "close_agent",
        "namespace": "multi_agent_v1",
        "arguments": "{}",
    }
    output = {"type": "function_call_output", "call_id": "c1", "output": "closed"}
    claude = translate(tools=[agents], input=[{"role": "user", "content": "Go"}, call, output])

    [tool] = claude.client_tools
    assert (tool.name, tool.description) == ("multi_agent_v1__close_agent", "Sub-agents. Close one.")
    assert claude.history[1].content[0]["name"] == "mcp__client__multi_agent_v1__close_agent"


def test_tool_choice_none_offers_no_tools():
    assert translate(tools=[WEATHER], tool_choice="none").client_tools == ()


@pytest.mark.parametrize(
    ("text", "schema"),
    [
        ({"format": {"type": "text"}}, None),
        ({"format": {"type": "json_object"}}, {"type": "object"}),
        (
            {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object", "properties": {}}}},
            {"type": "object", "properties": {}},
        ),
    ],
)
def test_text_format_becomes_the_output_schema(text: Any, schema: Any):
    assert translate(text=text).output_schema == schema


def test_harmless_parameters_are_accepted():
    claude = translate(
        temperature=0.2,
        top_p=0.5,
        user="u",
        metadata={"a": "b"},
        store=False,
        truncation="disabled",
        reasoning={"effort": "high", "summary": "auto"},
        text={"verbosity": "low"},
        max_tool_calls=3,
        service_tier="auto",
        prompt_cache_key="k",
        safety_identifier="s",
        stream_options={"include_obfuscation": False},
    )

    assert claude.effort == "high"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": {"id": "conv_1"}}, "conversation"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"tools": [WEATHER], "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "https://x.test/a.png"}],
                    }
                ]
            },
            "input[0].content[0]",
        ),
        (
            {
                "input": [
                    {"role": "system", "content": [{"type": "input_image", "image_url": "data:,"}]},
                    "Hi",
                ]
            },
            "input[0].content[0]",
        ),
    ],
)
def test_unsupported_feature_is_refused_by_name(fields: dict[str, Any], param: str):
    if fields.get("input") and fields["input"][-1] == "Hi":
        fields["input"][-1] = {"role": "user", "content": "Hi"}
    with pytest.raises(UnsupportedParameterError) as caught:
        translate(**fields)

    assert caught.value.param == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": [{"role": "assistant", "content": "Sure,"}]}, "input"),
        (
            {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}, "Hi"]},
            "input[0].arguments",
        ),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_time"}}, "tool_choice"),
    ],
)
def test_invalid_input_is_a_400_naming_the_place(fields: dict[str, Any], param: str):
    if fields.get("input") and isinstance(fields["input"], list) and fields["input"][-1] == "Hi":
        fields["input"][-1] = {"role": "user", "content": "Hi"}
    with pytest.raises(InvalidRequestError) as caught:
        translate(**fields)

    assert caught.value.param == param


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "sonnet"}, "Missing required parameter: 'input'."),
        (
            {"model": "sonnet", "input": "Hi", "max_output_tokens": 2**64},
            "Invalid value for 'max_output_tokens'",
        ),
        ({"model": "sonnet", "input": []}, "Invalid value for 'input'"),
        (
            {"model": "sonnet", "input": "Hi", "tools": [{"type": "function"}]},
            "Missing required parameter: 'tools[0].name'.",
        ),
    ],
)
def test_malformed_body_is_a_400_naming_the_parameter(body: dict[str, Any], message: str):
    with pytest.raises(InvalidRequestError) as caught:
        parse_responses_request(json.dumps(body).encode())  # json: 2**64 is past orjson's range

    assert caught.value.message.startswith(message)


# --- answers -------------------------------------------------------------------------------------
