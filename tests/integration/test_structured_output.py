"""Structured output on /v1/chat/completions (`response_format`), through the official `openai` client.

Claude Code offers Claude its `StructuredOutput` tool with the schema, checks the call against it and
asks again when it fails; the gateway hands on only the JSON that passed, and a clear error when
Claude gives none.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.integration.mock_anthropic import MockAnthropic, Reply, ToolUse
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

SCHEMA: Any = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
}
JSON_SCHEMA: Any = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True},
}
QUESTION: Any = [{"role": "user", "content": "Weather in Paris, as JSON"}]


def test_json_object_mode_gives_content_that_parses(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(tool_uses=[ToolUse("StructuredOutput", {"answer": 42})]))

    completion = client.chat.completions.create(
        model="sonnet", messages=QUESTION, response_format={"type": "json_object"}
    )

    assert json.loads(completion.choices[0].message.content or "") == {"answer": 42}
    assert completion.choices[0].finish_reason == "stop"
    offered = {tool["name"]: tool for tool in mock_anthropic.last_request.body["tools"]}
    assert offered["StructuredOutput"]["input_schema"]["type"] == "object"


def test_json_schema_reaches_claude_and_the_answer_follows_it(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris", "celsius": 22})]))

    completion = client.chat.completions.create(
        model="sonnet", messages=QUESTION, response_format=JSON_SCHEMA
    )

    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris", "celsius": 22}
    offered = {tool["name"]: tool for tool in mock_anthropic.last_request.body["tools"]}
    assert offered["StructuredOutput"]["input_schema"]["required"] == ["city", "celsius"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_only_the_json_that_passed_the_schema_reaches_the_client(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    # Claude Code rejects the first call (celsius is not an integer) and Claude tries again.
    mock_anthropic.queue(
        Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris", "celsius": "warm"})], chunk_size=5),
        Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris", "celsius": 22})], chunk_size=5),
    )

    if stream:
        chunks = list(
            client.chat.completions.create(
                model="sonnet", messages=QUESTION, response_format=JSON_SCHEMA, stream=True
            )
        )
        content = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        completion = client.chat.completions.create(
            model="sonnet", messages=QUESTION, response_format=JSON_SCHEMA
        )
        content = completion.choices[0].message.content or ""

    assert json.loads(content) == {"city": "Paris", "celsius": 22}
    assert len(mock_anthropic.message_requests) == 2


def test_prose_instead_of_json_is_a_clear_error(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    # Claude answers in prose, and again when Claude Code insists: there is no JSON to give.
    mock_anthropic.always(Reply(text="It is sunny in Paris."))

    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="sonnet", messages=QUESTION, response_format=JSON_SCHEMA)

    assert raised.value.status_code == 502
    assert "did not produce a JSON answer" in raised.value.message


def test_prose_instead_of_json_ends_a_stream_with_an_error(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.always(Reply(text="It is sunny in Paris."))
    received: list[str] = []

    def read(chunks: openai.Stream[Any]) -> None:
        for chunk in chunks:
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    stream = client.chat.completions.create(
        model="sonnet", messages=QUESTION, response_format={"type": "json_object"}, stream=True
    )
    with pytest.raises(openai.APIError) as raised:
        read(stream)

    assert "".join(received) == ""  # the prose never reached the client
    assert "did not produce a JSON answer" in raised.value.message
