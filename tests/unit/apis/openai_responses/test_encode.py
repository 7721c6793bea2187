"""Tests of apis/openai_responses/encode.py: the answer as a Response and its SSE events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from claude_code_api.answer.events import ClaudeUsage, ToolCallArguments, ToolCallRecord, ToolCallStarted
from claude_code_api.apis.openai_responses.encode import (
    ResponseStreamEncoder,
    response_echo,
    response_object,
    response_status,
)
from claude_code_api.errors import UpstreamTimeoutError
from claude_code_api.routes.responses import parse_responses_request

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def parse(**fields: Any) -> Any:
    return parse_responses_request(orjson.dumps({"model": "sonnet", "input": "Hello", **fields}))


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


AGENTS: Any = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for sub-agents.",
    "tools": [{"type": "function", "name": "close_agent", "parameters": {"type": "object"}, "strict": False}],
}


def test_a_namespace_functions_call_carries_its_namespace_back():
    call = ToolCallRecord("toolu_1", "multi_agent_v1__close_agent", '{"target":"a"}')
    body = response_object(
        echo(tools=[WEATHER, AGENTS]),
        model="claude-sonnet-5-5",
        text="",
        tool_calls=[call, ToolCallRecord("toolu_2", "get_weather", "{}")],
        stop_reason="tool_use",
        usage=ClaudeUsage(input_tokens=1, output_tokens=1),
    )

    first, second = Response.model_validate(body).output
    assert first.type == second.type == "function_call"
    assert (first.namespace, first.name) == ("multi_agent_v1", "close_agent")
    assert (second.namespace, second.name) == (None, "get_weather")


def test_a_streamed_namespace_call_carries_its_namespace():
    encoder = ResponseStreamEncoder(echo(tools=[AGENTS]))
    encoder.start("claude-sonnet-5-5")
    added = orjson.loads(
        encoder.tool_call_start(ToolCallStarted(0, "toolu_1", "multi_agent_v1__close_agent"))
        .decode()
        .split("data: ")[1]
    )
    assert (added["item"]["namespace"], added["item"]["name"]) == ("multi_agent_v1", "close_agent")
