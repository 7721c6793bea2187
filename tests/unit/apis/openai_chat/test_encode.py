"""Tests of apis/openai_chat/encode.py: the answer as OpenAI chat objects."""

from __future__ import annotations

from typing import Any

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
from claude_code_api.apis.openai_chat.encode import ChunkFactory, chat_completion, finish_reason, openai_usage


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
