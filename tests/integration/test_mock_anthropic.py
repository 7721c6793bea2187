"""The mock Messages API in `mock_anthropic.py`, and the real Claude Code CLI working against it.

The CLI tests run `claude_agent_sdk.query()` and the CLI it bundles, offline: only Anthropic's API is
replaced. They also re-check facts of shared/CLAUDE-CODE.md that the gateway relies on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    Message,
    RateLimitEvent,
    ResultError,
    ResultMessage,
    StreamEvent,
    ToolUseBlock,
    create_sdk_mcp_server,
    query,
    tool,
)

from tests.integration.mock_anthropic import (
    ErrorReply,
    Hang,
    MockAnthropic,
    Quota,
    Reply,
    ToolUse,
    Usage,
    echo_text,
    google_access_token,
)
from tests.integration.upstream_wire import decode_event_stream

TOKEN = "sk-ant-oat01-test-token"

# The SDK hands the whole os.environ to the CLI: any of these would change who the CLI talks to or
# which credential it sends (ANTHROPIC_API_KEY wins over the OAuth token; see CLAUDE-CODE.md §10).
_FOREIGN_ENVIRONMENT = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _FOREIGN_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def _claude_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "claude" and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(autouse=True)
def _no_claude_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 5
    while (left := _claude_children()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"claude processes still running: {[p.pid for p in left]}"


def _options(mock: MockAnthropic, tmp_path: Path, **overrides: Any) -> ClaudeAgentOptions:
    """Options for an offline run against `mock`, in an empty directory with a fresh home."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(exist_ok=True)
    cwd.mkdir(exist_ok=True)
    env = {
        "CLAUDE_CODE_OAUTH_TOKEN": TOKEN,
        "ANTHROPIC_BASE_URL": mock.url,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HOME": str(home),
        **overrides.pop("env", {}),
    }
    return ClaudeAgentOptions(
        env=env,
        cwd=cwd,
        tools=[],
        setting_sources=[],
        include_partial_messages=True,
        extra_args={"no-session-persistence": None},
        model="sonnet",
        **overrides,
    )


async def _run(prompt: str, options: ClaudeAgentOptions, into: list[Message] | None = None) -> list[Message]:
    messages = [] if into is None else into
    async for message in query(prompt=prompt, options=options):
        messages.append(message)
    return messages


async def _run_failing(prompt: str, options: ClaudeAgentOptions) -> tuple[list[Message], ResultError]:
    """Run a query that ends with an error result; the SDK raises after yielding it."""
    messages: list[Message] = []
    with pytest.raises(ResultError) as raised:
        await _run(prompt, options, into=messages)
    return messages, raised.value


def _deltas(messages: list[Message], kind: str) -> list[dict[str, Any]]:
    return [
        m.event["delta"]
        for m in messages
        if isinstance(m, StreamEvent)
        and m.event["type"] == "content_block_delta"
        and m.event["delta"]["type"] == kind
    ]


def _result(messages: list[Message]) -> ResultMessage:
    results = [m for m in messages if isinstance(m, ResultMessage)]
    assert len(results) == 1, messages
    return results[0]


# --- the real CLI against the mock ---------------------------------------------------------------


async def test_streamed_text_and_usage_reach_the_sdk(mock_anthropic: MockAnthropic, tmp_path):
    text = "Hello there, this answer arrives in pieces."
    usage = Usage(input_tokens=21, output_tokens=37, cache_creation_input_tokens=3, cache_read_input_tokens=4)
    mock_anthropic.queue(Reply(text=text, usage=usage, chunk_size=5))

    messages = await _run("Say hello", _options(mock_anthropic, tmp_path))

    deltas = _deltas(messages, "text_delta")
    assert len(deltas) == 9
    assert "".join(delta["text"] for delta in deltas) == text
    result = _result(messages)
    assert not result.is_error
    assert result.result == text
    assert result.stop_reason == "end_turn"
    assert result.usage is not None
    assert {name: result.usage[name] for name in vars(usage)} == vars(usage)
    assert mock_anthropic.last_request.tcp_nodelay is True


async def test_only_the_messages_call_goes_upstream_with_the_bearer_token_and_no_tools(
    mock_anthropic: MockAnthropic, tmp_path
):
    messages = await _run("What is 2 + 2?", _options(mock_anthropic, tmp_path))

    assert _result(messages).result == echo_text("What is 2 + 2?")
    # CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1: no HEAD /api/hello, no telemetry, one call.
    [request] = mock_anthropic.requests
    assert (request.method, request.path, dict(request.query)) == ("POST", "/v1/messages", {"beta": "true"})
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-api-key" not in request.headers
    assert request.stream
    assert request.body["model"] == "claude-sonnet-5-5"
    # CLI 2.1.331 sends `"tools": []` for `--tools ""` (CLAUDE-CODE.md §2 says no key): either way,
    # none of Claude Code's own tools may reach the upstream.
    assert request.body.get("tools", []) == []
    roles = [message["role"] for message in request.body["messages"]]
    assert roles == ["user", "system"]


async def test_tool_use_from_upstream_arrives_as_tool_use_block(mock_anthropic: MockAnthropic, tmp_path):
    calls: list[dict[str, Any]] = []

    @tool("get_weather", "The weather in a city", {"city": str})
    async def get_weather(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"content": [{"type": "text", "text": "sunny"}]}

    name = "mcp__client__get_weather"
    mock_anthropic.queue(
        Reply(tool_uses=[ToolUse(name, {"city": "Paris"}, id="toolu_weather")]),
        Reply(text="It is sunny in Paris."),
    )
    options = _options(
        mock_anthropic,
        tmp_path,
        mcp_servers={"client": create_sdk_mcp_server("client", tools=[get_weather])},
        allowed_tools=[name],
    )

    messages = await _run("Weather in Paris?", options)

    blocks = [
        block
        for m in messages
        if isinstance(m, AssistantMessage)
        for block in m.content
        if isinstance(block, ToolUseBlock)
    ]
    assert blocks == [ToolUseBlock(id="toolu_weather", name=name, input={"city": "Paris"})]
    pieces = [delta["partial_json"] for delta in _deltas(messages, "input_json_delta")]
    assert len(pieces) > 2
    assert json.loads("".join(pieces)) == {"city": "Paris"}
    assert calls == [{"city": "Paris"}]
    first, second = mock_anthropic.message_requests
    assert name in [t["name"] for t in first.body["tools"]]
    [tool_result] = second.body["messages"][-1]["content"]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == "toolu_weather"
    assert _result(messages).result == "It is sunny in Paris."


async def test_upstream_401_ends_with_an_error_result(mock_anthropic: MockAnthropic, tmp_path):
    # The CLI retries a 401 once even with no retries allowed, so every attempt must fail.
    mock_anthropic.always(ErrorReply.unauthorized())
    options = _options(mock_anthropic, tmp_path, env={"CLAUDE_CODE_MAX_RETRIES": "0"})

    messages, error = await _run_failing("Hello", options)

    result = _result(messages)
    assert result.is_error
    assert result.api_error_status == 401
    assert error.api_error_status == 401
    assert mock_anthropic.message_requests


async def test_subscription_limit_is_reported_without_retry(mock_anthropic: MockAnthropic, tmp_path):
    reset_at = int(time.time()) + 3600
    mock_anthropic.queue(ErrorReply.usage_limit(reset_at))

    messages, error = await _run_failing("Hello", _options(mock_anthropic, tmp_path))

    assert error.api_error_status == 429
    [event] = [m for m in messages if isinstance(m, RateLimitEvent)]
    assert event.rate_limit_info.status == "rejected"
    assert event.rate_limit_info.resets_at == reset_at
    assert len(mock_anthropic.message_requests) == 1


async def test_dropped_stream_is_asked_again_and_result_has_whole_text(
    mock_anthropic: MockAnthropic, tmp_path
):
    text = "A reply that breaks off and is asked for again."
    mock_anthropic.queue(Reply(text=text, drop_after=2, delay=0.05))
    mock_anthropic.always(Reply(text=text))

    messages = await _run("Hello", _options(mock_anthropic, tmp_path))

    assert _result(messages).result == text
    # Measured with CLI 2.1.331: the second request streams again (CLAUDE-CODE.md §6 expected a
    # non-streaming retry), and the deltas of the broken attempt were already handed out.
    assert [request.stream for request in mock_anthropic.message_requests] == [True, True]


# --- the mock on its own, over plain HTTP --------------------------------------------------------

_BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "env"}],
    "stream": True,
}


@pytest.fixture
async def http(mock_anthropic: MockAnthropic) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock_anthropic.url, timeout=5) as client:
        yield client


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in body.strip().split("\n\n"):
        name, data = frame.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


async def test_stream_follows_anthropics_event_sequence(mock_anthropic: MockAnthropic, http):
    mock_anthropic.queue(
        Reply(text="abcdef", tool_uses=[ToolUse("f", {"x": 1})], chunk_size=3, usage=Usage(7, 9))
    )

    response = await http.post("/v1/messages", json=_BODY)

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = _events(response.text)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["usage"]["input_tokens"] == 7
    assert start["model"] == _BODY["model"]
    assert events[6][1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_mock_01",
        "name": "f",
        "input": {},
    }
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"] == {"output_tokens": 9}


async def test_non_streaming_request_gets_one_message(mock_anthropic: MockAnthropic, http):
    mock_anthropic.queue(Reply(text="whole", stop_reason="max_tokens"))

    response = await http.post("/v1/messages", json=_BODY | {"stream": False})

    message = response.json()
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "whole"}]
    assert message["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("reply", "status", "error_type", "header"),
    [
        (ErrorReply.unauthorized(), 401, "authentication_error", None),
        (ErrorReply.rate_limited(retry_after=7), 429, "rate_limit_error", ("retry-after", "7")),
        (
            ErrorReply.usage_limit(1700000000),
            429,
            "rate_limit_error",
            ("anthropic-ratelimit-unified-reset", "1700000000"),
        ),
        (ErrorReply.server_error(), 500, "api_error", None),
        (ErrorReply.overloaded(), 529, "overloaded_error", None),
    ],
)
async def test_errors_have_anthropics_shape(
    mock_anthropic: MockAnthropic, http, reply, status, error_type, header
):
    mock_anthropic.queue(reply)

    response = await http.post("/v1/messages", json=_BODY)

    assert response.status_code == status
    assert response.json() == {
        "type": "error",
        "error": {"type": error_type, "message": reply.message},
    }
    if header is not None:
        assert response.headers[header[0]] == header[1]


async def test_other_paths_are_404_and_recorded(mock_anthropic: MockAnthropic, http):
    assert (await http.head("/api/hello")).status_code == 404
    assert (await http.post("/api/event_logging/batch?x=1", json={})).status_code == 404

    assert [(r.method, r.path, dict(r.query)) for r in mock_anthropic.requests] == [
        ("HEAD", "/api/hello", {}),
        ("POST", "/api/event_logging/batch", {"x": "1"}),
    ]
    assert mock_anthropic.message_requests == []


async def test_replies_and_quota_are_scripted_per_credential(mock_anthropic: MockAnthropic, http):
    mock_anthropic.always(ErrorReply.usage_limit(1800000000), credential="sk-ant-oat01-A")
    mock_anthropic.queue(Reply(text="from B"), credential="sk-ant-api03-B")
    mock_anthropic.set_quota("sk-ant-oat01-C", Quota.extra_usage(1800000000))
    body = _BODY | {"stream": False}

    refused = await http.post("/v1/messages", json=body, headers={"authorization": "Bearer sk-ant-oat01-A"})
    answered = await http.post("/v1/messages", json=body, headers={"x-api-key": "sk-ant-api03-B"})
    billed = await http.post("/v1/messages", json=body, headers={"authorization": "Bearer sk-ant-oat01-C"})
    echoed = await http.post("/v1/messages", json=body, headers={"x-api-key": "sk-ant-api03-B"})

    assert refused.status_code == 429
    assert refused.headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert answered.json()["content"][0]["text"] == "from B"
    assert billed.status_code == 200
    assert billed.headers["anthropic-ratelimit-unified-overage-in-use"] == "true"
    assert "anthropic-ratelimit-unified-status" not in answered.headers
    assert echoed.json()["content"][0]["text"] == echo_text("hi")
    assert [(r.auth_scheme, r.credential) for r in mock_anthropic.model_requests] == [
        ("bearer", "sk-ant-oat01-A"),
        ("x-api-key", "sk-ant-api03-B"),
        ("bearer", "sk-ant-oat01-C"),
        ("x-api-key", "sk-ant-api03-B"),
    ]


_BEDROCK_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}
_BEDROCK_MODEL = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


async def test_bedrock_streams_event_stream_frames(mock_anthropic: MockAnthropic, http):
    mock_anthropic.queue(Reply(text="bonjour", chunk_size=3))
    headers = {"authorization": "Bearer bedrock-api-key"}

    response = await http.post(
        f"/model/{_BEDROCK_MODEL.replace(':', '%3A')}/invoke-with-response-stream",
        json=_BEDROCK_BODY,
        headers=headers,
    )

    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    frames = decode_event_stream(response.content)
    events = [json.loads(base64.b64decode(json.loads(payload)["bytes"])) for _, payload in frames]
    assert all(h[":event-type"] == "chunk" and h[":message-type"] == "event" for h, _ in frames)
    assert next(e["type"] for e in events) == "message_start"
    assert events[0]["message"]["model"] == _BEDROCK_MODEL
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "bonjour"
    [request] = mock_anthropic.model_requests
    assert (request.kind, request.model, request.streamed) == ("bedrock", _BEDROCK_MODEL, True)
    assert (request.auth_scheme, request.credential) == ("bearer", "bedrock-api-key")


async def test_bedrock_invoke_answers_one_message_and_errors_in_bedrocks_shape(
    mock_anthropic: MockAnthropic, http
):
    mock_anthropic.queue(Reply(text="whole"), ErrorReply.rate_limited())

    whole = await http.post(f"/model/{_BEDROCK_MODEL}/invoke", json=_BEDROCK_BODY)
    throttled = await http.post(f"/model/{_BEDROCK_MODEL}/invoke", json=_BEDROCK_BODY)

    assert whole.json()["content"] == [{"type": "text", "text": "whole"}]
    assert throttled.status_code == 429
    assert throttled.headers["x-amzn-errortype"].startswith("ThrottlingException")
    assert throttled.json() == {"message": ErrorReply.rate_limited().message}


async def test_a_bad_sigv4_signature_for_a_known_key_is_refused(mock_anthropic: MockAnthropic, http):
    mock_anthropic.add_aws_key("AKIAMOCK", "the-secret")
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIAMOCK/20261206/eu-west-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    headers = {"authorization": authorization, "x-amz-date": "20261206T000000Z"}

    response = await http.post(f"/model/{_BEDROCK_MODEL}/invoke", json=_BEDROCK_BODY, headers=headers)

    assert response.status_code == 403
    [request] = mock_anthropic.requests
    assert (request.signature_valid, request.credential, request.region) == (False, "AKIAMOCK", "eu-west-1")
    assert request.sigv4 is not None
    assert request.sigv4.service == "bedrock"


async def test_bedrock_lists_inference_profiles_for_the_signed_region(mock_anthropic: MockAnthropic, http):
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIAX/20261206/ap-northeast-1/bedrock/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64
    )
    response = await http.get(
        "/inference-profiles?type=SYSTEM_DEFINED", headers={"authorization": authorization}
    )

    ids = [p["inferenceProfileId"] for p in response.json()["inferenceProfileSummaries"]]
    assert ids
    assert all(i.startswith("ap.anthropic.") for i in ids)


_VERTEX = "/v1/projects/proj-1/locations/europe-west4/publishers/anthropic/models/claude-sonnet-5-5"
_VERTEX_BODY = {
    "anthropic_version": "vertex-2023-10-16",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_vertex_wants_a_token_from_its_exchange(mock_anthropic: MockAnthropic, http):
    refused = await http.post(
        f"{_VERTEX}:rawPredict", json=_VERTEX_BODY, headers={"authorization": "Bearer x"}
    )
    exchange = await http.post(
        "/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": "subject-1",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        },
    )
    token = exchange.json()["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    whole = await http.post(f"{_VERTEX}:rawPredict", json=_VERTEX_BODY, headers=headers)
    streamed = await http.post(
        f"{_VERTEX}:streamRawPredict", json=_VERTEX_BODY | {"stream": True}, headers=headers
    )

    assert refused.status_code == 401
    assert token == google_access_token("subject-1")
    assert whole.json()["content"] == [{"type": "text", "text": echo_text("hi")}]
    assert next(name for name, _ in _events(streamed.text)) == "message_start"
    predict = mock_anthropic.model_requests[-1]
    assert (predict.kind, predict.project, predict.region, predict.model) == (
        "vertex",
        "proj-1",
        "europe-west4",
        "claude-sonnet-5-5",
    )
    assert predict.credential == token


async def _read_stream(http: httpx.AsyncClient, into: list[str]) -> None:
    async with http.stream("POST", "/v1/messages", json=_BODY) as response:
        async for line in response.aiter_lines():
            into.append(line)


async def test_drop_closes_the_connection_mid_stream(mock_anthropic: MockAnthropic, http):
    mock_anthropic.queue(Reply(text="abcdefgh", chunk_size=2, drop_after=2))

    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        await _read_stream(http, received)

    text = "".join(received)
    assert text.count("text_delta") == 2
    assert "message_stop" not in text


async def test_reset_releases_a_hang(mock_anthropic: MockAnthropic, http):
    mock_anthropic.queue(Hang())

    async def call() -> None:
        await http.post("/v1/messages", json=_BODY)

    pending = asyncio.create_task(call())
    await mock_anthropic.wait_for_requests_async(1)
    started = time.monotonic()
    mock_anthropic.reset()
    with pytest.raises(httpx.RemoteProtocolError):
        await pending
    assert time.monotonic() - started < 1
    assert mock_anthropic.requests == []


def test_stop_does_not_wait_for_open_streams():
    mock = MockAnthropic().start()
    mock.queue(Reply(text="x" * 100, delay=10))
    body = json.dumps(_BODY).encode()
    with (
        httpx.Client(base_url=mock.url) as client,
        client.stream("POST", "/v1/messages", content=body) as response,
    ):
        assert response.status_code == 200
        started = time.monotonic()
        mock.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


async def test_a_refused_subject_token_gets_no_access_token(mock_anthropic: MockAnthropic, http):
    mock_anthropic.refuse_subject_token("revoked")
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": "revoked"}

    response = await http.post("/token", data=form)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    headers = {"authorization": f"Bearer {google_access_token('revoked')}"}
    refused = await http.post(f"{_VERTEX}:rawPredict", json=_VERTEX_BODY, headers=headers)
    assert refused.status_code == 401
