"""/v1/chat/completions through the official `openai` client: answers whole and streamed, what reaches
Claude, the models and the health check.

Each request runs the real Claude Code CLI against the mock upstream, so these tests show both what the
client gets (OpenAI's objects and stream) and what reaches Claude (system prompt, history, token, model,
limits). Errors, unknown models among them, are in test_api_errors.py; the cost, `include_usage` and
refused parameters in test_chat_usage_and_parameters.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply, Usage
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

HELLO: Any = [{"role": "user", "content": "Say hello"}]
# The model Claude Code runs for "sonnet" against the mock upstream, which answers as the model asked.
SONNET_ID = "claude-sonnet-5-5"
# Usage with every kind of prompt token: OpenAI's prompt_tokens is their sum, 20 + 7 + 5.
CACHED_USAGE = Usage(
    input_tokens=20, output_tokens=9, cache_creation_input_tokens=7, cache_read_input_tokens=5
)


@pytest.fixture
def http(gateway_server: GatewayServer, api_key: str) -> Iterator[httpx.Client]:
    """A raw HTTP client with the key, for the stream's headers and bytes."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=gateway_server.base_url, headers=headers, timeout=30) as c:
        yield c


def upstream_texts(request: RecordedRequest) -> list[tuple[str, str]]:
    """(role, text) of every text block of the user and assistant messages that reached the upstream,
    in order (the CLI also puts `system` messages of its own among them)."""
    texts = []
    for message in request.body["messages"]:
        if message["role"] not in ("user", "assistant"):
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts += [(message["role"], block["text"]) for block in blocks if block.get("type") == "text"]
    return texts


def system_text(request: RecordedRequest) -> str:
    return " ".join(block["text"] for block in request.body["system"])


def streamed_text(chunks: list[Any]) -> str:
    return "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)


# --- answers -------------------------------------------------------------------------------------


def test_answer_comes_whole_as_a_chat_completion_of_the_model_claude_used(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there, friend"))
    before = int(time.time())

    completion = client.chat.completions.create(model="sonnet", messages=HELLO)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert before - 1 <= completion.created <= time.time() + 1
    assert completion.model == SONNET_ID
    [choice] = completion.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello there, friend"
    assert choice.message.tool_calls is None


def test_usage_is_what_claude_reported_with_cache_tokens_in_the_prompt(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello", usage=CACHED_USAGE))

    completion = client.chat.completions.create(model="sonnet", messages=HELLO)

    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (32, 9, 41)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5


# --- streaming -----------------------------------------------------------------------------------


def test_streamed_answer_comes_token_by_token_after_a_role_chunk(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there, my good friend", chunk_size=4))

    chunks = list(client.chat.completions.create(model="sonnet", messages=HELLO, stream=True))

    first = chunks[0]
    assert first.object == "chat.completion.chunk"
    assert first.id.startswith("chatcmpl-")
    assert first.model == SONNET_ID
    assert first.choices[0].delta.role == "assistant"
    assert {chunk.id for chunk in chunks} == {first.id}
    deltas = [chunk.choices[0].delta.content for chunk in chunks[1:] if chunk.choices[0].delta.content]
    assert len(deltas) > 1
    assert "".join(deltas) == "Hello there, my good friend"


def test_stream_ends_with_a_chunk_that_gives_the_finish_reason(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there", chunk_size=3))

    chunks = list(client.chat.completions.create(model="sonnet", messages=HELLO, stream=True))

    *answer, last = chunks
    assert last.choices[0].finish_reason == "stop"
    assert last.choices[0].delta.content is None
    assert all(chunk.choices[0].finish_reason is None for chunk in answer)


def test_streamed_usage_chunk_counts_cache_tokens_in_the_prompt(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Hello there", chunk_size=3, usage=CACHED_USAGE))

    stream = client.chat.completions.create(
        model="sonnet", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]

    assert last.choices == []
    usage = last.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (32, 9, 41)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5


def test_stream_headers_keep_proxies_from_buffering_or_caching_it(
    http: httpx.Client, mock_anthropic: MockAnthropic
) -> None:
    with http.stream(
        "POST", "/chat/completions", json={"model": "sonnet", "messages": HELLO, "stream": True}
    ) as r:
        r.read()

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"


def test_raw_stream_ends_with_done(http: httpx.Client, mock_anthropic: MockAnthropic) -> None:
    mock_anthropic.queue(Reply(text="Hello there", chunk_size=3))

    with http.stream(
        "POST", "/chat/completions", json={"model": "sonnet", "messages": HELLO, "stream": True}
    ) as r:
        body = r.read()

    assert r.status_code == 200
    assert body.startswith(b"data: {")
    assert body.endswith(b"data: [DONE]\n\n")
    assert body.count(b"[DONE]") == 1


# --- what reaches Claude -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["system", "developer"])
def test_instructions_reach_claude_in_its_system_prompt(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, role: str
) -> None:
    messages: Any = [{"role": role, "content": "Answer in French."}, *HELLO]

    client.chat.completions.create(model="sonnet", messages=messages)

    request = mock_anthropic.last_request
    assert "Answer in French." in system_text(request)
    assert all("Answer in French." not in text for _, text in upstream_texts(request))


def test_conversation_history_reaches_claude_as_separate_turns(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    messages: Any = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]

    completion = client.chat.completions.create(model="sonnet", messages=messages)

    texts = upstream_texts(mock_anthropic.last_request)
    ada, nice, question = (
        texts.index(("user", "My name is Ada.")),
        texts.index(("assistant", "Nice to meet you, Ada.")),
        texts.index(("user", "What is my name?")),
    )
    assert ada < nice < question
    assert texts[-1] == ("user", "What is my name?")
    assert completion.choices[0].message.content == "Echo: What is my name?"


def test_content_given_as_text_parts_reaches_claude(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Here is a poem."}, {"type": "text", "text": "Say hello"}],
        }
    ]

    completion = client.chat.completions.create(model="sonnet", messages=messages)

    texts = upstream_texts(mock_anthropic.last_request)
    assert texts[-2:] == [("user", "Here is a poem."), ("user", "Say hello")]
    assert completion.choices[0].message.content == "Echo: Say hello"


def test_each_request_carries_the_oauth_token_of_its_own_key(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    tokens = [make_oauth_token(), make_oauth_token()]
    keys = [
        gateway_server.create_key(name, token)[1] for name, token in zip(["ada", "bob"], tokens, strict=True)
    ]

    for key in keys:
        with openai.OpenAI(
            api_key=key, base_url=gateway_server.base_url, max_retries=0, timeout=30
        ) as caller:
            caller.chat.completions.create(model="sonnet", messages=HELLO)

    sent = [request.bearer_token for request in mock_anthropic.message_requests]
    assert sent == tokens


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_output_token_limit_reaches_claude(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, param: str
) -> None:
    limit: Any = {param: 321}

    client.chat.completions.create(model="sonnet", messages=HELLO, **limit)

    assert mock_anthropic.last_request.body["max_tokens"] == 321


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_stop_cuts_the_answer_before_the_stop_string(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    # Chunks of 3 split "STOP" across two deltas: the gateway must hold back its start.
    mock_anthropic.queue(Reply(text="One, two, STOP, three, four", chunk_size=3))

    text: str | None
    if stream:
        chunks = list(
            client.chat.completions.create(model="sonnet", messages=HELLO, stop="STOP", stream=True)
        )
        text, finish = streamed_text(chunks), chunks[-1].choices[0].finish_reason
    else:
        completion = client.chat.completions.create(model="sonnet", messages=HELLO, stop=["STOP"])
        text, finish = completion.choices[0].message.content, completion.choices[0].finish_reason

    assert text == "One, two, "
    assert finish == "stop"


# --- models --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "runs"),
    [("gpt-4", "opus"), ("gpt-4-turbo", "sonnet"), ("gpt-3.5-turbo", "claude-3-5-haiku-20241022")],
)
def test_openai_alias_runs_its_claude_model(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, alias: str, runs: str
) -> None:
    completion = client.chat.completions.create(model=alias, messages=HELLO)

    upstream_model = mock_anthropic.last_request.body["model"]
    assert runs in upstream_model
    assert completion.model == upstream_model


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-3-7-sonnet-20250219"])
def test_full_claude_id_passes_through(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, model: str
) -> None:
    completion = client.chat.completions.create(model=model, messages=HELLO)

    assert mock_anthropic.last_request.body["model"] == model
    assert completion.model == model


def test_model_list_has_openais_shape_with_families_and_aliases(client: openai.OpenAI) -> None:
    page = client.models.list()

    assert page.object == "list"
    ids = [model.id for model in page.data]
    assert {"opus", "sonnet", "haiku", "gpt-4", "gpt-4-turbo", "gpt-3.5-turbo"} <= set(ids)
    assert len(ids) == len(set(ids))
    assert all(model.object == "model" and model.owned_by == "anthropic" for model in page.data)
    assert all(isinstance(model.created, int) for model in page.data)


def test_model_is_retrieved_by_its_name(client: openai.OpenAI) -> None:
    model = client.models.retrieve("sonnet")

    assert (model.id, model.object, model.owned_by) == ("sonnet", "model", "anthropic")


# --- health --------------------------------------------------------------------------------------


def test_health_answers_without_a_key(gateway_server: GatewayServer) -> None:
    response = httpx.get(f"{gateway_server.base_url}/health")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["store"]) == ("ok", "ok")
