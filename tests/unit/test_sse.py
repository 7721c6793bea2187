"""Tests of sse.py: our bytes, checked as written and as the official `openai` package parses them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from openai import OpenAI, Stream
from openai._streaming import ServerSentEvent, SSEDecoder
from openai.types.chat import ChatCompletionChunk as OpenAIChatCompletionChunk

from claude_code_api.answer.events import ClaudeUsage, ToolCallArguments, ToolCallStarted
from claude_code_api.apis.openai_chat.encode import ChunkFactory
from claude_code_api.sse import DONE, STREAM_HEADERS, encode_event, encode_named_event

FACTORY = ChunkFactory("chatcmpl-abc", 1_700_000_000, "gpt-4", include_usage=True)
TRICKY_TEXTS = [
    "plain",
    "",
    "line one\nline two\n\nafter a blank line",
    "carriage\rreturn and \r\n CRLF",
    "data: [DONE]\n\n",
    ": not a comment",
    'quotes " and \\ backslashes',
    "unicode: héllo — 你好 — 🎉 — \u2028\u2029",
    "\x00 nul and \x1b escape",
]


def parse(data: bytes, chunk_size: int | None = None) -> list[ServerSentEvent]:
    """Our bytes through the openai package's SSE decoder, fed whole or in pieces of `chunk_size`."""
    size = chunk_size or max(len(data), 1)
    pieces: Iterator[bytes] = (data[i : i + size] for i in range(0, len(data), size))
    return list(SSEDecoder().iter_bytes(pieces))


def openai_stream(data: bytes) -> list[OpenAIChatCompletionChunk]:
    """Our bytes as the official client reads a chat completion stream, up to and without `[DONE]`."""
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx2.Response(200, content=data, request=request, headers=STREAM_HEADERS)
    with OpenAI(api_key="sk-unit-test", base_url="http://127.0.0.1:9/v1") as client:
        stream = Stream(cast_to=OpenAIChatCompletionChunk, response=response, client=client)
        return list(stream)


def full_stream() -> list[dict[str, Any]]:
    return [
        FACTORY.role(),
        *(FACTORY.content(text) for text in TRICKY_TEXTS),
        FACTORY.tool_call_start(ToolCallStarted(0, "toolu_1", "get_weather")),
        FACTORY.tool_call_arguments(ToolCallArguments(0, '{"city": "Paris"}')),
        FACTORY.finish("stop"),
        FACTORY.usage(ClaudeUsage(input_tokens=5, output_tokens=7, cache_read_tokens=3)),
    ]


# --- bytes as written ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, b"data: {}\n\n"),
        ({"a": 1}, b'data: {"a":1}\n\n'),
        ({"text": "two\nlines"}, b'data: {"text":"two\\nlines"}\n\n'),
        ({"text": "cr\r"}, b'data: {"text":"cr\\r"}\n\n'),
        ({"text": "h\u00e9"}, b'data: {"text":"h\xc3\xa9"}\n\n'),
        ({"v": None, "ok": True, "n": 1.5}, b'data: {"v":null,"ok":true,"n":1.5}\n\n'),
    ],
)
def test_event_is_one_data_line_of_compact_json_and_a_blank_line(payload, expected):
    assert encode_event(payload) == expected


def test_content_chunk_is_encoded_byte_for_byte():
    chunk = ChunkFactory("chatcmpl-abc", 1_700_000_000, "gpt-4").content("Hi\n")
    assert encode_event(chunk) == (
        b'data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4",'
        b'"choices":[{"index":0,"delta":{"content":"Hi\\n"},"logprobs":null,"finish_reason":null}],'
        b'"system_fingerprint":null}\n\n'
    )


def test_done_marker_is_the_openai_end_of_stream():
    assert DONE == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        (
            "message_start",
            {"type": "message_start"},
            b'event: message_start\ndata: {"type":"message_start"}\n\n',
        ),
        ("ping", {}, b"event: ping\ndata: {}\n\n"),
    ],
)
def test_named_event_is_an_event_line_then_a_data_line(event, payload, expected):
    assert encode_named_event(event, payload) == expected


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_no_payload_text_breaks_the_event_framing(text):
    encoded = encode_event({"content": text})
    assert encoded.startswith(b"data: ")
    assert encoded.endswith(b"\n\n")
    body = encoded[len(b"data: ") : -2]
    assert b"\n" not in body
    assert b"\r" not in body


def test_stream_headers_keep_proxies_from_buffering_and_caches_from_keeping():
    assert STREAM_HEADERS == {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "Connection": "keep-alive",
    }


# --- bytes as the openai package reads them -----------------------------------------------------


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_openai_decoder_reads_back_what_we_encoded(text):
    chunk = FACTORY.content(text)
    (event,) = parse(encode_event(chunk))
    assert event.event is None
    assert event.json() == chunk


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3, 7, 64])
def test_openai_decoder_reads_a_whole_stream_split_at_any_byte(chunk_size):
    chunks = full_stream()
    data = b"".join(encode_event(chunk) for chunk in chunks) + DONE
    events = parse(data, chunk_size)
    assert [event.data for event in events[-1:]] == ["[DONE]"]
    assert [event.json() for event in events[:-1]] == chunks
    assert [json.loads(event.data) for event in events[:-1]] == chunks


def test_openai_decoder_reads_named_events():
    data = encode_named_event("content_block_delta", {"delta": {"text": "a\nb"}}) + encode_named_event(
        "ping", {}
    )
    events = parse(data, chunk_size=5)
    assert [(event.event, event.json()) for event in events] == [
        ("content_block_delta", {"delta": {"text": "a\nb"}}),
        ("ping", {}),
    ]


def test_openai_client_stream_yields_our_chunks_and_stops_at_done():
    chunks = full_stream()
    after_done = encode_event(FACTORY.content("must never be read"))
    data = b"".join(encode_event(chunk) for chunk in chunks) + DONE + after_done
    parsed = openai_stream(data)
    assert [chunk.to_dict(mode="json") for chunk in parsed] == chunks
    assert "".join(chunk.choices[0].delta.content or "" for chunk in parsed if chunk.choices) == "".join(
        TRICKY_TEXTS
    )
    assert parsed[-1].usage is not None
    assert parsed[-1].usage.prompt_tokens == 8


def test_openai_client_stream_without_done_still_yields_every_chunk():
    chunks = [FACTORY.role(), FACTORY.content("Hi"), FACTORY.finish("length")]
    parsed = openai_stream(b"".join(encode_event(chunk) for chunk in chunks))
    assert [chunk.to_dict(mode="json") for chunk in parsed] == chunks
    assert parsed[-1].choices[0].finish_reason == "length"
