"""Tests of apis/openai_chat/encode.py: the answer as OpenAI chat objects."""

from __future__ import annotations

import re
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion as OpenAIChatCompletion
from openai.types.chat import ChatCompletionChunk as OpenAIChatCompletionChunk

from claude_code_api.answer.events import (
    ClaudeUsage,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
)
from claude_code_api.apis.openai_chat.encode import (
    ChatChunkEncoder,
    ChunkFactory,
    chat_completion,
    finish_reason,
    openai_usage,
)
from claude_code_api.errors import GatewayError
from tests.replay import assert_golden, replay_answer, replay_names, replay_stream
from tests.wire_clients import JSON, openai_client

FAILED_BEFORE_ANSWERING = ("overloaded", "unauthorized", "usage_limit")


@pytest.mark.parametrize(
    ("stop_reason", "by_sequence", "expected"),
    [
        ("end_turn", False, "stop"),
        ("stop_sequence", False, "stop"),
        ("pause_turn", False, "stop"),
        ("max_tokens", False, "length"),
        ("model_context_window_exceeded", False, "length"),
        ("tool_use", False, "tool_calls"),
        ("refusal", False, "content_filter"),
        (None, False, "stop"),
        ("some_future_reason", False, "stop"),
        ("max_tokens", True, "stop"),
        ("refusal", True, "stop"),
    ],
)
def test_finish_reason_maps_claude_stop_reasons(stop_reason, by_sequence, expected):
    assert finish_reason(stop_reason, stopped_by_sequence=by_sequence) == expected


@pytest.mark.parametrize(
    ("usage", "prompt", "completion", "cached"),
    [
        (ClaudeUsage(), 0, 0, 0),
        (ClaudeUsage(input_tokens=10, output_tokens=5), 10, 5, 0),
        (ClaudeUsage(input_tokens=10, output_tokens=5, cache_creation_tokens=100), 110, 5, 0),
        (ClaudeUsage(input_tokens=10, output_tokens=5, cache_read_tokens=1000), 1010, 5, 1000),
        (ClaudeUsage(10, 5, cache_creation_tokens=100, cache_read_tokens=1000), 1110, 5, 1000),
    ],
)
def test_openai_usage_counts_cache_tokens_as_prompt_tokens(usage, prompt, completion, cached):
    assert openai_usage(usage) == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_chat_completion_has_openai_shape():
    completion = chat_completion(
        completion_id="chatcmpl-abc",
        created=1_700_000_123,
        model="gpt-4",
        text="Hello!",
        finish="length",
        usage=ClaudeUsage(input_tokens=3, output_tokens=2, cache_read_tokens=5),
    )
    assert completion == {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_123,
        "model": "gpt-4",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 2,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": None,
    }
    parsed = OpenAIChatCompletion.model_validate(orjson.loads(orjson.dumps(completion)))
    assert parsed.choices[0].message.content == "Hello!"
    assert parsed.usage is not None
    assert parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 5


@pytest.mark.parametrize(
    ("text_", "tool_calls", "message"),
    [
        ("", None, {"role": "assistant", "content": "", "refusal": None}),
        (
            "",
            [ToolCallRecord("toolu_1", "get_weather", '{"city":"Rome"}'), ToolCallRecord("toolu_2", "ping")],
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                    {"id": "toolu_2", "type": "function", "function": {"name": "ping", "arguments": "{}"}},
                ],
            },
        ),
        (
            "Checking.",
            [ToolCallRecord("toolu_1", "ping", "{}")],
            {
                "role": "assistant",
                "content": "Checking.",
                "refusal": None,
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}
                ],
            },
        ),
    ],
)
def test_chat_completion_message_carries_tool_calls(text_, tool_calls, message):
    completion = chat_completion(
        completion_id="c",
        created=1,
        model="m",
        text=text_,
        finish="tool_calls",
        usage=ClaudeUsage(),
        tool_calls=tool_calls,
    )
    assert completion["choices"][0]["message"] == message
    OpenAIChatCompletion.model_validate(completion)


CHUNK_HEAD = {
    "id": "chatcmpl-xyz",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "gpt-4",
}


def choice(delta: dict[str, Any], finish: str | None) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]


@pytest.mark.parametrize(
    ("build", "choices"),
    [
        (lambda f: f.role(), choice({"role": "assistant", "content": "", "refusal": None}, None)),
        (lambda f: f.content("Hel"), choice({"content": "Hel"}, None)),
        (lambda f: f.content(""), choice({"content": ""}, None)),
        (lambda f: f.finish("stop"), choice({}, "stop")),
        (lambda f: f.finish("length"), choice({}, "length")),
        (
            lambda f: f.tool_call_start(ToolCallStarted(1, "toolu_1", "get_weather")),
            choice(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
                None,
            ),
        ),
        (
            lambda f: f.tool_call_arguments(ToolCallArguments(1, '{"city"')),
            choice({"tool_calls": [{"index": 1, "function": {"arguments": '{"city"'}}]}, None),
        ),
    ],
)
@pytest.mark.parametrize("include_usage", [False, True])
def test_chunk_factory_builds_openai_chunks(build, choices, include_usage):
    factory = ChunkFactory("chatcmpl-xyz", 1_700_000_000, "gpt-4", include_usage=include_usage)
    expected: dict[str, Any] = {**CHUNK_HEAD, "choices": choices, "system_fingerprint": None}
    if include_usage:
        expected["usage"] = None
    chunk = build(factory)
    assert chunk == expected
    OpenAIChatCompletionChunk.model_validate(chunk)


def test_usage_chunk_has_no_choices_and_the_usage():
    factory = ChunkFactory("chatcmpl-xyz", 1_700_000_000, "gpt-4", include_usage=True)
    chunk = factory.usage(
        ClaudeUsage(input_tokens=7, output_tokens=3, cache_creation_tokens=1, cache_read_tokens=2)
    )
    assert chunk == {
        **CHUNK_HEAD,
        "choices": [],
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert OpenAIChatCompletionChunk.model_validate(chunk).usage.total_tokens == 13


# --- through the replay runner: recorded Claude Code runs, encoded and read back by `openai` -------

COMPLETION_ID = "chatcmpl-replay"
CREATED = 1_700_000_000
QUESTION: Any = [{"role": "user", "content": "recorded"}]
ANSWERED = [
    name for name in replay_names() if name not in (*FAILED_BEFORE_ANSWERING, "broken_stream_then_error")
]


def chat_encoder(include_usage: bool = True) -> ChatChunkEncoder:
    return ChatChunkEncoder(COMPLETION_ID, CREATED, include_usage)


def spec_for(name: str) -> dict[str, Any]:
    return {"output_schema": {"type": "object"}} if name.startswith("structured") else {}


@pytest.mark.parametrize("name", [*ANSWERED, "broken_stream_then_error"])
async def test_stream_is_byte_for_byte_the_golden_file(name: str) -> None:
    assert_golden(f"openai_chat/{name}.sse", await replay_stream(name, chat_encoder(), **spec_for(name)))


@pytest.mark.parametrize("name", ANSWERED)
async def test_stream_read_by_openai_equals_the_whole_answer(name: str) -> None:
    body = await replay_stream(name, chat_encoder(), **spec_for(name))
    whole = OpenAIChatCompletion.model_validate(
        chat_encoder().whole(await replay_answer(name, **spec_for(name)))
    )

    with openai_client(body).chat.completions.stream(model="sonnet", messages=QUESTION) as stream:
        try:
            streamed: OpenAIChatCompletion = stream.get_final_completion()
        except openai.LengthFinishReasonError as cut:  # the accumulator's way to end at "length"
            streamed = cut.completion

    assert streamed.id == whole.id == COMPLETION_ID
    assert streamed.choices[0].finish_reason == whole.choices[0].finish_reason
    assert (streamed.choices[0].message.content or "") == (whole.choices[0].message.content or "")
    calls = [
        (c.id, c.function.name, c.function.arguments) for c in streamed.choices[0].message.tool_calls or []
    ]
    assert calls == [
        (c.id, c.function.name, c.function.arguments) for c in whole.choices[0].message.tool_calls or []
    ]
    assert streamed.usage == whole.usage


@pytest.mark.parametrize(
    ("name", "spec", "content", "finish", "usage"),
    [
        ("plain_text", {}, "Hello there! How can I help?", "stop", (21, 7, 0)),
        ("cached_usage", {}, "Hello again.", "stop", (1004, 3, 900)),
        ("max_tokens", {}, "The answer was cut h", "length", (12, 5, 0)),
        ("thinking", {}, "Forty-two.", "stop", (10, 5, 0)),
        ("plain_text", {"stop_sequences": ("ere! How",)}, "Hello th", "stop", (21, 7, 0)),
        ("broken_stream_retried", {}, "Hello there, general Kenobi.", "stop", (25, 10, 0)),
        ("structured_output", {"output_schema": {}}, '{"celsius":22,"city":"Paris"}', "stop", (10, 5, 0)),
        (
            "structured_output_retried",
            {"output_schema": {}},
            '{"celsius":22,"city":"Paris"}',
            "stop",
            (20, 10, 0),
        ),
    ],
)
async def test_whole_completion_has_the_text_finish_reason_and_usage(
    name: str, spec: dict[str, Any], content: str, finish: str, usage: tuple[int, int, int]
) -> None:
    completion = OpenAIChatCompletion.model_validate(chat_encoder().whole(await replay_answer(name, **spec)))

    assert completion.choices[0].message.content == content
    assert completion.choices[0].finish_reason == finish
    assert completion.usage is not None
    prompt, output, cached = usage
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, output)
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == cached


async def test_tool_call_deltas_carry_their_index_and_rebuild_both_calls() -> None:
    body = await replay_stream("parallel_tool_calls", chat_encoder(include_usage=False))

    chunks = list(openai_client(body).chat.completions.create(model="sonnet", messages=QUESTION, stream=True))

    deltas = [call for chunk in chunks for choice in chunk.choices for call in choice.delta.tool_calls or []]
    assert [(d.index, d.id, d.function.name if d.function else None) for d in deltas if d.id] == [
        (0, "toolu_weather_1", "get_weather"),
        (1, "toolu_time_2", "get_time"),
    ]
    arguments = ["", ""]
    for delta in deltas:
        arguments[delta.index] += delta.function.arguments or "" if delta.function else ""
    assert [orjson.loads(a) for a in arguments] == [{"city": "Paris"}, {"city": "Paris"}]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is None  # no usage chunk when it was not asked for


async def test_usage_chunk_comes_last_when_asked_for() -> None:
    body = await replay_stream("cached_usage", chat_encoder(include_usage=True))

    chunks = list(openai_client(body).chat.completions.create(model="sonnet", messages=QUESTION, stream=True))

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (1004, 3)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize(
    ("name", "error_type", "status"),
    [
        ("unauthorized", openai.InternalServerError, 502),
        ("usage_limit", openai.RateLimitError, 429),
        ("overloaded", openai.InternalServerError, 503),
    ],
)
async def test_failure_before_the_first_byte_is_an_http_error(
    name: str, error_type: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(GatewayError) as raised:
        await replay_stream(name, chat_encoder())
    error = raised.value
    client = openai_client(orjson.dumps(error.to_body()), status=error.status, headers=JSON | error.headers())

    with pytest.raises(error_type) as seen:
        client.chat.completions.create(model="sonnet", messages=QUESTION, stream=True)

    assert seen.value.status_code == status
    assert seen.value.body == error.to_body()["error"]


async def test_failure_after_the_first_byte_is_an_error_event_openai_raises() -> None:
    body = await replay_stream("broken_stream_then_error", chat_encoder())

    stream = openai_client(body).chat.completions.create(model="sonnet", messages=QUESTION, stream=True)
    contents: list[str | None] = []

    def read() -> None:
        for chunk in stream:
            contents.append(chunk.choices[0].delta.content)

    with pytest.raises(openai.APIError, match=re.escape("Claude's API failed (upstream HTTP 500).")):
        read()

    assert contents == ["", "Hell", "o th"]
    assert not body.endswith(b"data: [DONE]\n\n")
