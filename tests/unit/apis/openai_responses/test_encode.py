"""Tests of apis/openai_responses/encode.py: the answer as a Response and its SSE events."""

from __future__ import annotations

from typing import Any

import openai
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
from claude_code_api.errors import GatewayError, UpstreamTimeoutError
from claude_code_api.routes.responses import parse_responses_request
from tests.replay import assert_golden, replay_answer, replay_names, replay_stream
from tests.wire_clients import JSON, openai_client

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


# --- through the replay runner: recorded Claude Code runs, encoded and read back by `openai` -------

FAILED_BEFORE_ANSWERING = ("overloaded", "unauthorized", "usage_limit")
ANSWERED = [
    name for name in replay_names() if name not in (*FAILED_BEFORE_ANSWERING, "broken_stream_then_error")
]
TOOLS: Any = [
    {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}, "strict": False}
    for name in ("get_weather", "get_time")
]


def replay_encoder() -> ResponseStreamEncoder:
    return ResponseStreamEncoder(echo(tools=TOOLS))


def spec_for(name: str) -> dict[str, Any]:
    return {"output_schema": {"type": "object"}} if name.startswith("structured") else {}


@pytest.mark.parametrize("name", [*ANSWERED, "broken_stream_then_error"])
async def test_replayed_stream_is_byte_for_byte_the_golden_file(name: str) -> None:
    body = await replay_stream(name, replay_encoder(), **spec_for(name))

    assert_golden(f"openai_responses/{name}.sse", body)


@pytest.mark.parametrize("name", ANSWERED)
async def test_replayed_stream_read_by_openai_ends_with_the_whole_response(name: str) -> None:
    body = await replay_stream(name, replay_encoder(), **spec_for(name))
    whole = Response.model_validate(replay_encoder().whole(await replay_answer(name, **spec_for(name))))

    events = list(
        openai_client(body).responses.create(model="sonnet", input="recorded", tools=TOOLS, stream=True)
    )

    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert events[-1].response.model_dump() == whole.model_dump()  # type: ignore[union-attr]


@pytest.mark.parametrize("name", [name for name in ANSWERED if name != "max_tokens"])
async def test_replayed_stream_accumulated_by_openai_has_the_answer(name: str) -> None:
    body = await replay_stream(name, replay_encoder(), **spec_for(name))
    answer = await replay_answer(name, **spec_for(name))

    with openai_client(body).responses.stream(model="sonnet", input="recorded", tools=TOOLS) as stream:
        final = stream.get_final_response()

    assert final.output_text == answer.text
    calls = [
        (item.call_id, item.name, item.arguments) for item in final.output if item.type == "function_call"
    ]
    assert calls == [(call.call_id, call.name, call.arguments) for call in answer.tool_calls]


@pytest.mark.parametrize(
    ("name", "spec", "status", "incomplete", "usage"),
    [
        ("plain_text", {}, "completed", None, (21, 0, 7)),
        ("cached_usage", {}, "completed", None, (1004, 900, 3)),
        ("max_tokens", {}, "incomplete", "max_output_tokens", (12, 0, 5)),
        ("plain_text", {"stop_sequences": ("How",)}, "completed", None, (21, 0, 7)),
        ("tool_call", {}, "completed", None, (50, 0, 20)),
    ],
)
async def test_replayed_whole_response_has_status_and_usage(
    name: str, spec: dict[str, Any], status: str, incomplete: str | None, usage: tuple[int, int, int]
) -> None:
    response = Response.model_validate(replay_encoder().whole(await replay_answer(name, **spec)))

    assert response.status == status
    assert (response.incomplete_details.reason if response.incomplete_details else None) == incomplete
    assert response.usage is not None
    assert (
        response.usage.input_tokens,
        response.usage.input_tokens_details.cached_tokens,
        response.usage.output_tokens,
    ) == usage


async def test_replayed_tool_calls_are_function_call_items_with_streamed_arguments() -> None:
    body = await replay_stream("parallel_tool_calls", replay_encoder())

    events = list(
        openai_client(body).responses.create(model="sonnet", input="recorded", tools=TOOLS, stream=True)
    )

    added = [event.item for event in events if event.type == "response.output_item.added"]
    assert [(item.type, getattr(item, "name", None)) for item in added] == [
        ("message", None),
        ("function_call", "get_weather"),
        ("function_call", "get_time"),
    ]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.output_index, orjson.loads(e.arguments)) for e in done] == [
        (1, {"city": "Paris"}),
        (2, {"city": "Paris"}),
    ]


@pytest.mark.parametrize(
    ("name", "error_type", "status"),
    [
        ("unauthorized", openai.InternalServerError, 502),
        ("usage_limit", openai.RateLimitError, 429),
        ("overloaded", openai.InternalServerError, 503),
    ],
)
async def test_replayed_failure_before_the_first_byte_is_an_http_error(
    name: str, error_type: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(GatewayError) as raised:
        await replay_stream(name, replay_encoder())
    error = raised.value
    client = openai_client(orjson.dumps(error.to_body()), status=error.status, headers=JSON | error.headers())

    with pytest.raises(error_type) as seen:
        client.responses.create(model="sonnet", input="recorded", stream=True)

    assert seen.value.status_code == status
    assert seen.value.body == error.to_body()["error"]


async def test_replayed_failure_after_the_first_byte_is_a_response_failed_event() -> None:
    body = await replay_stream("broken_stream_then_error", replay_encoder())

    events = list(openai_client(body).responses.create(model="sonnet", input="recorded", stream=True))

    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Hell", "o th"]
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == (
        "server_error",
        "Claude's API failed (upstream HTTP 500).",
    )
    assert failed.output_text == "Hello th"


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
