"""Anthropic's Messages API through the gateway, called with the official `anthropic` client.

Each request runs the real Claude Code CLI against the mock upstream, so these tests show what the
client gets (Anthropic's shapes, events and errors) and what reaches Claude (tool use with the
`mcp__client__` prefix, tool results, images, the system prompt).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.integration.gateway_harness import GatewayServer, make_settings
from tests.integration.mock_anthropic import (
    ErrorReply,
    MockAnthropic,
    RecordedRequest,
    Reply,
    ToolUse,
    Usage,
    counted_tokens,
)
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_BASE64 = base64.b64encode(PNG).decode()
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO: Any = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def client(gateway_server: GatewayServer, api_key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=api_key, base_url=gateway_server.url, max_retries=0, timeout=30) as c:
        yield c


def upstream_blocks(request: RecordedRequest, kind: str) -> list[dict[str, Any]]:
    """The content blocks of one type in what reached the upstream, in order."""
    return [
        block
        for message in request.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == kind
    ]


# --- answers -------------------------------------------------------------------------------------


def test_text_answer_comes_as_an_anthropic_message_with_real_usage_and_cost(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there", usage=Usage(input_tokens=21, output_tokens=7)))

    raw = client.messages.with_raw_response.create(model="sonnet", max_tokens=100, messages=HELLO)
    message = raw.parse()

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [(block.type, block.text) for block in message.content] == [("text", "Hello there")]  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.model == "claude-sonnet-5-5"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 7)
    assert float(raw.headers["x-claude-cost-usd"]) > 0


def test_streamed_answer_follows_anthropics_event_sequence(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there, friend", chunk_size=5, usage=Usage(12, 6, 0, 3)))

    with client.messages.stream(model="sonnet", max_tokens=100, messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()

    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "".join(block.text for block in message.content) == "Hello there, friend"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (12, 6, 3)


def test_raw_stream_events_are_exactly_anthropics(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hi!", chunk_size=10))

    events = list(client.messages.create(model="sonnet", max_tokens=50, messages=HELLO, stream=True))

    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[2].delta.text == "Hi!"  # type: ignore[union-attr]
    assert events[4].delta.stop_reason == "end_turn"  # type: ignore[union-attr]


def test_system_prompt_in_blocks_reaches_claude(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    client.messages.create(
        model="sonnet",
        max_tokens=50,
        system=[{"type": "text", "text": "Answer in French."}, {"type": "text", "text": "Be brief."}],
        messages=HELLO,
        metadata={"user_id": "user-1"},
        # Sampling parameters are accepted and left to Claude Code; this client no longer sends them.
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 5},
    )

    system = " ".join(block["text"] for block in mock_anthropic.last_request.body["system"])
    assert "Answer in French.\n\nBe brief." in system


def test_bearer_token_works_as_well_as_x_api_key(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic
) -> None:
    with anthropic.Anthropic(auth_token=api_key, base_url=gateway_server.url, max_retries=0) as bearer:
        message = bearer.messages.create(model="sonnet", max_tokens=50, messages=HELLO)

    assert message.content[0].text == "Echo: Say hello"  # type: ignore[union-attr]


def test_stop_sequence_cuts_the_answer_and_is_reported(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="one, two, three, four"))

    message = client.messages.create(model="sonnet", max_tokens=50, messages=HELLO, stop_sequences=["three"])

    assert message.content[0].text == "one, two, "  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "three")


# --- tools ---------------------------------------------------------------------------------------


def test_two_step_tool_loop_reaches_claude_as_tool_use_and_tool_result(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(
        Reply(text="Let me look.", tool_uses=[ToolUse("mcp__client__get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    question: Any = [{"role": "user", "content": "Weather in Paris?"}]

    first = client.messages.create(model="sonnet", max_tokens=200, tools=[WEATHER_TOOL], messages=question)

    assert first.stop_reason == "tool_use"
    text, call = first.content
    assert text.type == "text"
    assert text.text == "Let me look."
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    offered = [tool["name"] for tool in mock_anthropic.last_request.body["tools"]]
    assert "mcp__client__get_weather" in offered

    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "22 °C, sunny"}
    second = client.messages.create(
        model="sonnet",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            *question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
    )

    assert second.content[0].text == "It is sunny in Paris."  # type: ignore[union-attr]
    assert second.stop_reason == "end_turn"
    upstream = mock_anthropic.last_request
    [tool_use] = upstream_blocks(upstream, "tool_use")
    assert (tool_use["id"], tool_use["name"], tool_use["input"]) == (
        call.id,
        "mcp__client__get_weather",
        {"city": "Paris"},
    )
    [tool_result] = upstream_blocks(upstream, "tool_result")
    assert tool_result["tool_use_id"] == call.id
    assert "22 °C, sunny" in str(tool_result["content"])


def test_parallel_tool_calls_stream_and_reassemble(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(
        Reply(
            text="",
            tool_uses=[
                ToolUse("mcp__client__get_weather", {"city": "Paris"}),
                ToolUse("mcp__client__get_weather", {"city": "Rome"}),
            ],
            chunk_size=3,
        )
    )

    with client.messages.stream(
        model="sonnet", max_tokens=200, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "Both?"}]
    ) as stream:
        message = stream.get_final_message()

    assert message.stop_reason == "tool_use"
    assert [(block.type, block.name, block.input) for block in message.content] == [  # type: ignore[union-attr]
        ("tool_use", "get_weather", {"city": "Paris"}),
        ("tool_use", "get_weather", {"city": "Rome"}),
    ]
    assert len({block.id for block in message.content}) == 2  # type: ignore[union-attr]


def test_tool_choice_tool_and_no_parallel_use_reach_claude_as_instructions(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    client.messages.create(
        model="sonnet",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=HELLO,
    )

    system = " ".join(block["text"] for block in mock_anthropic.last_request.body["system"])
    assert "You must answer by calling the tool mcp__client__get_weather." in system
    assert "Call at most one tool in your answer." in system


def test_tool_choice_none_offers_no_tools(client: anthropic.Anthropic, mock_anthropic: MockAnthropic) -> None:
    client.messages.create(
        model="sonnet", max_tokens=50, tools=[WEATHER_TOOL], tool_choice={"type": "none"}, messages=HELLO
    )

    offered = [tool["name"] for tool in mock_anthropic.last_request.body.get("tools") or []]
    assert not [name for name in offered if name.startswith("mcp__client__")]


# --- images and structured output ----------------------------------------------------------------


def test_base64_image_reaches_claude_as_an_image_block(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
    }
    client.messages.create(
        model="sonnet",
        max_tokens=50,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}],
    )

    [block] = upstream_blocks(mock_anthropic.last_request, "image")
    assert block["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}


def test_output_format_gives_json_text(client: anthropic.Anthropic, mock_anthropic: MockAnthropic) -> None:
    schema: Any = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    mock_anthropic.queue(Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris"})]))

    message = client.messages.create(
        model="sonnet",
        max_tokens=100,
        messages=HELLO,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )

    assert message.content[0].text == '{"city":"Paris"}'  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"


# --- refusals and errors in Anthropic's shape ----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}],
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
                            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
    ],
)
def test_unsupported_feature_is_a_400_naming_it(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic, fields: dict[str, Any], param: str
) -> None:
    request: dict[str, Any] = {"model": "sonnet", "max_tokens": 50, "messages": HELLO, **fields}

    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**request)

    body: Any = raised.value.body
    assert raised.value.status_code == 400
    assert body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": body["error"]["message"]},
    }
    assert body["error"]["message"].startswith(f"Unsupported parameter '{param}': ")
    assert not mock_anthropic.message_requests


def test_prefill_is_refused(client: anthropic.Anthropic, mock_anthropic: MockAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(
            model="sonnet", max_tokens=50, messages=[*HELLO, {"role": "assistant", "content": "Hello, I am"}]
        )

    assert "partial assistant message is not supported" in raised.value.message


def test_missing_max_tokens_is_a_400_in_anthropics_shape(gateway_server: GatewayServer, api_key: str) -> None:
    response = httpx.post(
        f"{gateway_server.url}/v1/messages",
        headers={"x-api-key": api_key, "anthropic-version": "2023-06-01"},
        json={"model": "sonnet", "messages": HELLO},
    )

    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "Missing required parameter: 'max_tokens'."},
    }


def test_count_tokens_counts_through_claude_code_without_generating(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    counted = client.messages.count_tokens(model="sonnet", system="Be brief.", messages=HELLO)

    count_requests = [r for r in mock_anthropic.requests if r.is_count_tokens]
    assert count_requests, "Claude Code did not ask the upstream to count"
    answers = [counted_tokens(r.body) for r in count_requests]
    # Claude Code adds up what the upstream counted for its parts (system prompt, tools, messages).
    assert max(answers) <= counted.input_tokens <= sum(answers)
    assert not mock_anthropic.message_requests, "counting must not generate anything"
    counted_text = json.dumps([r.body for r in count_requests])
    assert "Be brief." in counted_text
    assert "Say hello" in counted_text or "hello" in counted_text.lower()


def test_wrong_key_is_an_authentication_error(gateway_server: GatewayServer) -> None:
    with anthropic.Anthropic(
        api_key="sk-wrong-key-123456", base_url=gateway_server.url, max_retries=0
    ) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as raised:
            wrong.messages.create(model="sonnet", max_tokens=50, messages=HELLO)
        with pytest.raises(anthropic.AuthenticationError):
            wrong.models.list()

    assert raised.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_unknown_model_is_a_not_found_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="gpt-5-ultra", max_tokens=50, messages=HELLO)

    assert raised.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_unknown_route_under_messages_is_anthropic_shaped(
    gateway_server: GatewayServer, api_key: str
) -> None:
    response = httpx.post(
        f"{gateway_server.url}/v1/messages/batches", headers={"x-api-key": api_key}, json={}
    )

    assert response.status_code == 404
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "not_found_error"


def test_upstream_failure_before_the_answer_is_an_http_error(
    client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.always(ErrorReply.unauthorized())

    with pytest.raises(anthropic.APIStatusError) as raised:
        list(client.messages.create(model="sonnet", max_tokens=50, messages=HELLO, stream=True))

    assert raised.value.status_code == 502
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]


@pytest.fixture
def quick_idle_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    with GatewayServer(make_settings(tmp_path / "idle", mock_anthropic.url, idle_timeout=1.0)) as server:
        yield server


def test_failure_mid_stream_ends_with_an_error_event(
    quick_idle_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there, general", chunk_size=4, stall_after=2))
    _, key = quick_idle_gateway.create_key()
    received: list[str] = []

    def read(events: Any) -> None:
        for event in events:
            if event.type == "content_block_delta":
                received.append(event.delta.text)

    with (
        anthropic.Anthropic(api_key=key, base_url=quick_idle_gateway.url, max_retries=0) as stalled,
        pytest.raises(anthropic.APIStatusError) as raised,
    ):
        read(stalled.messages.create(model="sonnet", max_tokens=50, messages=HELLO, stream=True))

    assert "".join(received) == "Hello th"
    assert raised.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]


# --- models --------------------------------------------------------------------------------------


def test_models_list_answers_in_anthropics_shape(client: anthropic.Anthropic) -> None:
    page = client.models.list(limit=3)

    assert [model.id for model in page.data] == ["opus", "sonnet", "haiku"]
    assert page.has_more is True
    assert page.data[0].type == "model"
    every = [model.id for model in client.models.list(limit=2)]  # the client follows the cursors
    assert "claude-sonnet-4-5" in every
    assert len(every) == len(set(every))
    model = client.models.retrieve("claude-3-5-haiku-20241022")
    assert (model.id, model.display_name) == ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku")


def test_models_list_without_anthropic_version_stays_openais(
    gateway_server: GatewayServer, api_key: str
) -> None:
    response = httpx.get(f"{gateway_server.url}/v1/models", headers={"Authorization": f"Bearer {api_key}"})

    assert response.json()["object"] == "list"
