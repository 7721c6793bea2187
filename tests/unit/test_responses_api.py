"""Tests of responses_api.py: Responses requests to Claude requests, and answers back as a Response
object and as `response.*` events, read by the `openai` package's own stream state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from claude_code_api.answer.events import ClaudeUsage, ToolCallArguments, ToolCallRecord, ToolCallStarted
from claude_code_api.answer.request import TOOL_RESULTS_PROMPT, ClaudeRequest, ClaudeTurn
from claude_code_api.answer.tools import ClientTool
from claude_code_api.apis.openai_responses.encode import (
    ResponseStreamEncoder,
    response_echo,
    response_object,
    response_status,
)
from claude_code_api.apis.openai_responses.translate import translate_responses_request
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError, UpstreamTimeoutError
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


# --- requests ------------------------------------------------------------------------------------


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
    assert claude.prompt == ({"type": "text", "text": TOOL_RESULTS_PROMPT},)
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
        ({"store": True}, "store"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": {"id": "conv_1"}}, "conversation"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"truncation": "auto"}, "truncation"),
        ({"reasoning": {"summary": "detailed"}}, "reasoning.summary"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0]"),
        ({"tools": [WEATHER], "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0]"),
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
        ({"input": " "}, "input"),
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
            {"model": "sonnet", "input": "Hi", "frobnicate": 1},
            "Unrecognized request argument supplied: frobnicate",
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
        parse_responses_request(orjson.dumps(body))

    assert caught.value.message.startswith(message)


# --- answers -------------------------------------------------------------------------------------


def echo(**fields: Any) -> dict[str, Any]:
    return response_echo(parse(**fields), response_id="resp_abc", created_at=1_700_000_000)


def test_response_object_has_openais_shape():
    body = response_object(
        echo(instructions="Be brief.", tools=[WEATHER], tool_choice="required", temperature=0.5),
        model="claude-sonnet-5-5",
        text="Checking.",
        tool_calls=[ToolCallRecord("toolu_1", "get_weather", '{"city":"Paris"}')],
        stop_reason="tool_use",
        usage=ClaudeUsage(input_tokens=10, output_tokens=5, cache_read_tokens=4, cache_creation_tokens=1),
    )

    response = Response.model_validate(body)
    assert response.status == "completed"
    assert response.output_text == "Checking."
    [message, call] = response.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == ("toolu_1", "get_weather", '{"city":"Paris"}')
    assert message.id != call.id
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        15,
        5,
        20,
    )
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert (response.instructions, response.tool_choice, response.temperature) == (
        "Be brief.",
        "required",
        0.5,
    )
    assert body["store"] is False
    assert response.tools[0].name == "get_weather"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("stop_reason", "status", "reason"),
    [
        ("end_turn", "completed", None),
        ("tool_use", "completed", None),
        ("stop_sequence", "completed", None),
        ("max_tokens", "incomplete", "max_output_tokens"),
        ("refusal", "incomplete", "content_filter"),
    ],
)
def test_stop_reason_sets_the_status(stop_reason: str, status: str, reason: str | None):
    found, details = response_status(stop_reason)

    assert found == status
    assert (details or {}).get("reason") == reason


def stream(encoder: ResponseStreamEncoder, stop_reason: str = "tool_use") -> list[dict[str, Any]]:
    raw = b"".join(
        [
            encoder.start("claude-sonnet-5-5"),
            encoder.text("Checking "),
            encoder.text("both."),
            encoder.tool_call_start(ToolCallStarted(0, "toolu_1", "get_weather")),
            encoder.tool_call_arguments(ToolCallArguments(0, '{"city":')),
            encoder.tool_call_arguments(ToolCallArguments(0, '"Paris"}')),
            encoder.tool_call_start(ToolCallStarted(1, "toolu_2", "get_weather")),
            encoder.finish(stop_reason, None, ClaudeUsage(input_tokens=10, output_tokens=5)),
        ]
    )
    events = []
    for block in raw.decode().split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        event = orjson.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    return events


def test_stream_reads_back_through_openais_own_stream_state():
    events = stream(ResponseStreamEncoder(echo(tools=[WEATHER])))
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[WEATHER], text_format=omit)
    for event in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=event))  # type: ignore[arg-type]

    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    final = Response.model_validate(events[-1]["response"])
    assert final.output_text == "Checking both."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(call.call_id, call.arguments) for call in calls] == [
        ("toolu_1", '{"city":"Paris"}'),
        ("toolu_2", "{}"),
    ]
    assert final.usage is not None
    assert final.usage.total_tokens == 15
    assert events[2]["item"]["status"] == "in_progress"
    assert events[8]["item"]["status"] == "completed"


def test_stream_that_hits_the_token_limit_ends_incomplete():
    events = stream(ResponseStreamEncoder(echo()), stop_reason="max_tokens")

    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_stream_failure_is_a_response_failed_event():
    encoder = ResponseStreamEncoder(echo())
    encoder.start("claude-sonnet-5-5")
    encoder.text("Hel")

    event = orjson.loads(encoder.error(UpstreamTimeoutError("late")).split(b"data: ", 1)[1])

    assert event["type"] == "response.failed"
    assert event["response"]["status"] == "failed"
    assert event["response"]["error"] == {"code": "server_error", "message": "late"}
    assert Response.model_validate(event["response"]).output_text == "Hel"
