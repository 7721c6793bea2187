"""OpenAI's Responses API through the gateway, called with the official `openai` client.

Each request runs the real Claude Code CLI against the mock upstream: text and message-list input,
instructions, function tools with function_call / function_call_output items, streaming with the
`response.*` events (read raw and through the client's own stream helper), and the refusals.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.integration.gateway_harness import GatewayServer
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, RecordedRequest, Reply, ToolUse, Usage
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def upstream_blocks(request: RecordedRequest, kind: str) -> list[dict[str, Any]]:
    return [
        block
        for message in request.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == kind
    ]


def test_text_input_gives_a_completed_response(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    mock_anthropic.queue(Reply(text="Hello there", usage=Usage(input_tokens=20, output_tokens=4)))

    raw = client.responses.with_raw_response.create(
        model="sonnet", input="Say hello", instructions="Be brief."
    )
    response = raw.parse()

    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "Hello there"
    assert response.instructions == "Be brief."
    assert raw.http_response.json()["store"] is False
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        20,
        4,
        24,
    )
    assert float(raw.headers["x-claude-cost-usd"]) > 0
    system = " ".join(block["text"] for block in mock_anthropic.last_request.body["system"])
    assert "Be brief." in system


def test_message_list_input_replays_the_conversation(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    client.responses.create(
        model="sonnet",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
            {"role": "user", "content": [{"type": "input_text", "text": "What is my name?"}]},
        ],
    )

    body = mock_anthropic.last_request.body
    texts = [
        (message["role"], block["text"])
        for message in body["messages"]
        if message["role"] != "system" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "text"
    ]
    assert ("user", "My name is Ada.") in texts
    assert ("assistant", "Nice to meet you, Ada.") in texts
    assert texts[-1] == ("user", "What is my name?")
    assert "Answer in French." in " ".join(block["text"] for block in body["system"])


def test_function_call_loop_with_function_call_output(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(
        Reply(text="", tool_uses=[ToolUse("mcp__client__get_weather", {"city": "Paris"})]),
        Reply(text="Sunny in Paris."),
    )
    question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]

    first = client.responses.create(model="sonnet", input=question, tools=[WEATHER_TOOL])

    [call] = first.output
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert first.status == "completed"

    second = client.responses.create(
        model="sonnet",
        tools=[WEATHER_TOOL],
        input=[
            *question,
            *first.output,  # type: ignore[list-item]
            {"type": "function_call_output", "call_id": call.call_id, "output": "22 °C"},
        ],
    )

    assert second.output_text == "Sunny in Paris."
    upstream = mock_anthropic.last_request
    [tool_use] = upstream_blocks(upstream, "tool_use")
    assert (tool_use["id"], tool_use["name"]) == (call.call_id, "mcp__client__get_weather")
    [tool_result] = upstream_blocks(upstream, "tool_result")
    assert tool_result["tool_use_id"] == call.call_id
    assert "22 °C" in str(tool_result["content"])


def test_parallel_function_calls_stream_through_the_clients_helper(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(
        Reply(
            text="Checking both.",
            tool_uses=[
                ToolUse("mcp__client__get_weather", {"city": "Paris"}),
                ToolUse("mcp__client__get_weather", {"city": "Rome"}),
            ],
            chunk_size=3,
        )
    )

    with client.responses.stream(model="sonnet", input="Paris and Rome?", tools=[WEATHER_TOOL]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 3
    assert "response.function_call_arguments.delta" in kinds
    assert final.output_text == "Checking both."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [json.loads(call.arguments) for call in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert len({call.call_id for call in calls}) == 2


def test_streamed_text_events_in_order(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    mock_anthropic.queue(Reply(text="Hello there", chunk_size=4))

    events = list(client.responses.create(model="sonnet", input="Hi", stream=True))

    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert (
        "".join(event.delta for event in events if event.type == "response.output_text.delta")
        == "Hello there"
    )
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.output_text == "Hello there"
    assert completed.usage is not None


def test_json_schema_text_format_gives_json(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    schema: Any = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    mock_anthropic.queue(Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris"})]))

    response = client.responses.create(
        model="sonnet",
        input="Where?",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema}},
    )

    assert json.loads(response.output_text) == {"city": "Paris"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"background": True}, "background"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
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
    ],
)
def test_unsupported_feature_is_a_400_naming_it(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, fields: dict[str, Any], param: str
) -> None:
    request: dict[str, Any] = {"model": "sonnet", "input": "Hi", **fields}

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(**request)

    assert raised.value.param == param
    assert raised.value.code == "unsupported_parameter"
    assert not mock_anthropic.message_requests


def test_unknown_field_is_ignored_and_named(gateway_server: GatewayServer, api_key: str) -> None:
    response = httpx.post(
        f"{gateway_server.base_url}/responses",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"model": "sonnet", "input": "Hi", "frobnicate": 1},
        timeout=30,
    )

    assert response.status_code == 200
    assert response.headers["x-ignored-fields"] == "frobnicate"


def test_upstream_failure_mid_stream_ends_with_response_failed(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    # The first answer breaks off; the CLI asks again without streaming and that attempt fails.
    mock_anthropic.queue(Reply(text="Hello there, general", chunk_size=4, delay=0.05, drop_after=2))
    mock_anthropic.always(ErrorReply.server_error())

    events = list(client.responses.create(model="sonnet", input="Hi", stream=True))

    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "server_error"
