"""Every way a request to the API fails, as the client sees it: status, OpenAI's error shape, headers.

Requests the gateway refuses itself (bad keys, bad bodies, parameters Claude cannot honour, unknown
models and routes) never start Claude. Upstream failures are scripted on the mock upstream; the test
gateway runs Claude Code with no retries (`upstream_max_retries=0`), as make_settings sets it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.gateway_harness import GatewayServer, make_settings
from tests.integration.mock_anthropic import ErrorReply, Hang, MockAnthropic, Scripted
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    all_gone,
    eventually,
    no_claude_process_outlives_the_test,
    no_run_left_answering,
    talking_to,
)

PROMPT = [{"role": "user", "content": "Say hello"}]
CHAT = {"model": "sonnet", "messages": PROMPT}


@pytest.fixture
def http(gateway_server: GatewayServer, api_key: str) -> Iterator[httpx.Client]:
    """A raw HTTP client with the key, for bodies and headers the openai client would not send."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=gateway_server.url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
def gateway_with(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[Callable[..., GatewayServer]]:
    """Starts gateways with other settings (make_settings overrides); stops them after the test."""
    servers: list[GatewayServer] = []

    def start(**overrides: Any) -> GatewayServer:
        data_dir = tmp_path / f"gateway-{len(servers)}"
        servers.append(GatewayServer(make_settings(data_dir, mock_anthropic.url, **overrides)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def openai_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    """Checks an error response: its status, OpenAI's exact shape, its code and its request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["code"] == code
    return error


# --- the API key -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "sk-no-scheme"],
    ids=["absent", "empty", "no-key", "basic", "no-scheme"],
)
def test_missing_key_is_refused(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = httpx.post(f"{gateway_server.base_url}/chat/completions", json=CHAT, headers=headers)

    error = openai_error(response, 401, "invalid_api_key")
    assert error["type"] == "invalid_request_error"
    assert mock_anthropic.requests == []


def test_unknown_key_is_refused_without_being_echoed(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    unknown = "sk-" + "A1b2C3d4" * 6

    with (
        openai.OpenAI(api_key=unknown, base_url=gateway_server.base_url, max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        stranger.chat.completions.create(model="sonnet", messages=PROMPT)

    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert unknown not in raised.value.response.text
    assert mock_anthropic.requests == []


def test_revoked_key_is_refused_at_once(gateway_server: GatewayServer, mock_anthropic: MockAnthropic) -> None:
    record, key = gateway_server.create_key("to-revoke")
    assert gateway_server.gateway is not None
    keys = gateway_server.gateway.keys

    with openai.OpenAI(api_key=key, base_url=gateway_server.base_url, max_retries=0) as caller:
        caller.chat.completions.create(model="sonnet", messages=PROMPT)
        gateway_server.call(keys.revoke_key(record.id))
        with pytest.raises(openai.AuthenticationError) as raised:
            caller.chat.completions.create(model="sonnet", messages=PROMPT)

    assert raised.value.code == "invalid_api_key"
    assert len(mock_anthropic.message_requests) == 1


def test_models_need_a_key(gateway_server: GatewayServer) -> None:
    response = httpx.get(f"{gateway_server.base_url}/models")

    openai_error(response, 401, "invalid_api_key")


# --- the request body ------------------------------------------------------------------------------


# Each way a body can be malformed (not JSON, not an object, a missing field, a wrong type) is a unit
# test of the parser (tests/unit/routes/test_deps.py); here one case proves the error's shape on the wire.
@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(b'{"model": "sonnet", "messages": [', None, id="malformed-json"),
        pytest.param(
            b'{"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], '
            b'"max_tokens": 18446744073709551616}',
            "max_tokens",
            id="max-tokens-2-to-the-64",
        ),
    ],
)
def test_invalid_body_is_a_400_naming_the_parameter(
    http: httpx.Client, mock_anthropic: MockAnthropic, body: bytes, param: str | None
) -> None:
    response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})

    error = openai_error(response, 400, "invalid_request")
    assert error["type"] == "invalid_request_error"
    if param is None:
        assert error["param"] is None
    else:
        assert error["param"] is not None
        assert error["param"].startswith(param)
        assert param in error["message"]
    assert mock_anthropic.requests == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": False, "top_logprobs": 3}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, "audio"),
        ({"functions": [{"name": "read_file", "parameters": {"type": "object"}}]}, "functions"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_parameter_claude_cannot_honour_is_a_400_naming_it(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="sonnet", messages=PROMPT, **params)

    assert raised.value.param == param
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["param"] == param
    assert param in raised.value.body["message"]
    assert raised.value.code == "unsupported_parameter"
    assert raised.value.type == "invalid_request_error"
    assert mock_anthropic.requests == []


@pytest.fixture
def small_body_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    server = GatewayServer(
        make_settings(tmp_path / "small", mock_anthropic.url, max_request_bytes=1024)
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_a_413(
    gateway_with: Callable[..., GatewayServer], mock_anthropic: MockAnthropic, chunked: bool
) -> None:
    small_body_gateway = gateway_with(max_request_bytes=1024)
    _, key = small_body_gateway.create_key()
    body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    # An iterator makes httpx send the body chunked, without a Content-Length to refuse it by.
    content = iter([body[:500], body[500:1000], body[1000:]]) if chunked else body

    response = httpx.post(
        f"{small_body_gateway.base_url}/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )

    error = openai_error(response, 413, "request_too_large")
    assert "1024" in error["message"]
    assert mock_anthropic.requests == []


# --- models and routes -----------------------------------------------------------------------------


def test_unknown_model_is_a_404(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-5-ultra", messages=PROMPT)

    assert raised.value.code == "model_not_found"
    assert raised.value.param == "model"
    assert "gpt-5-ultra" in raised.value.message
    assert mock_anthropic.requests == []


def test_retrieving_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-5-ultra")

    assert raised.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing-here", 404, "not_found"),
        ("POST", "/v2/chat/completions", 404, "not_found"),
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
    ],
)
def test_unknown_route_is_an_error_in_openai_shape(
    http: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    response = http.request(method, path)

    error = openai_error(response, status, code)
    assert error["type"] == "invalid_request_error"


def test_unexpected_failure_is_a_500_in_openai_shape(
    http: httpx.Client, gateway_server: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing the client sends can break the gateway on purpose: break one of its services instead.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the gateway")

    assert gateway_server.gateway is not None
    monkeypatch.setattr(gateway_server.gateway.runner, "run", broken)

    response = http.post("/v1/chat/completions", json=CHAT)

    error = openai_error(response, 500, "internal_error")
    assert "a bug in the gateway" not in error["message"]


# --- upstream failures -----------------------------------------------------------------------------


def failed_request(
    client: openai.OpenAI, stream: bool, messages: list[dict[str, Any]] = PROMPT
) -> tuple[openai.APIStatusError, float]:
    """The HTTP error a request got (a stream must fail before it starts), and how long it took."""
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="sonnet", messages=messages, stream=stream)
    return raised.value, time.monotonic() - started


def check_upstream_error(error: openai.APIStatusError, mock: MockAnthropic) -> None:
    """The error's body is in OpenAI's shape and tells nothing of the upstream's address."""
    assert error.response.headers["x-request-id"].startswith("req_")
    assert isinstance(error.body, dict)
    assert set(error.body) == {"message", "type", "param", "code"}
    assert str(mock.port) not in error.response.text
    assert "127.0.0.1" not in error.response.text


whole_or_stream = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


@whole_or_stream
def test_upstream_rejecting_the_token_is_a_quick_502(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    mock_anthropic.always(ErrorReply.unauthorized())

    error, took = failed_request(client, stream)

    assert error.status_code == 502
    assert error.code == "upstream_authentication_failed"
    assert "claude setup-token" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert took < 10
    check_upstream_error(error, mock_anthropic)


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (ErrorReply.rate_limited(retry_after=1), 429),
        (ErrorReply.server_error(), 502),
        (ErrorReply.overloaded(), 503),
    ],
    ids=["429", "500", "529"],
)
@whole_or_stream
def test_upstream_failure_maps_to_its_status(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, reply: Scripted, status: int, stream: bool
) -> None:
    mock_anthropic.always(reply)

    error, _ = failed_request(client, stream)

    assert error.status_code == status
    if status == 429:
        # Told not to retry, Claude Code reports no wait: the client still gets one.
        assert int(error.response.headers["retry-after"]) >= 1
    check_upstream_error(error, mock_anthropic)


@whole_or_stream
def test_subscription_usage_limit_is_a_429_with_retry_after(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    resets_in = 3600
    mock_anthropic.always(ErrorReply.usage_limit(reset_at=int(time.time()) + resets_in))

    error, took = failed_request(client, stream)

    assert error.status_code == 429
    retry_after = int(error.response.headers["retry-after"])
    assert resets_in - took - 5 <= retry_after <= resets_in
    check_upstream_error(error, mock_anthropic)


@whole_or_stream
def test_an_upstream_429_passes_on_its_retry_after(
    tmp_path: Path, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    # Claude Code waits the upstream's Retry-After before its retry; the client is told the same.
    mock_anthropic.always(ErrorReply.rate_limited(retry_after=3))
    server = GatewayServer(
        make_settings(tmp_path / "data", mock_anthropic.url, upstream_max_retries=1)
    ).start()
    try:
        _, key = server.create_key()
        with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
            error, _ = failed_request(client, stream)
    finally:
        server.stop()

    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "3"
    assert error.code == "upstream_rate_limited"


@whole_or_stream
def test_a_prompt_past_the_context_window_is_a_400_naming_the_limit(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    too_long = "prompt is too long: 250101 tokens > 200000 maximum"
    mock_anthropic.always(ErrorReply(400, "invalid_request_error", too_long))

    error, _ = failed_request(client, stream)

    assert error.status_code == 400
    assert error.code == "context_length_exceeded"
    assert "250101 tokens, the model takes 200000" in error.message
    check_upstream_error(error, mock_anthropic)


def test_a_prompt_of_several_megabytes_is_a_400_context_length_exceeded(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    huge = "word " * 1_000_000  # 5 MB, far past any context window: Claude Code refuses it itself

    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": huge}])

    assert refused.value.code == "context_length_exceeded"
    assert not mock_anthropic.message_requests


@pytest.fixture
def impatient_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A gateway that gives Claude 2 s to start answering."""
    server = GatewayServer(
        make_settings(tmp_path / "impatient", mock_anthropic.url, first_token_timeout=2)
    ).start()
    try:
        yield server
    finally:
        server.stop()


@whole_or_stream
def test_upstream_that_never_answers_is_a_504_and_its_process_ends(
    gateway_with: Callable[..., GatewayServer], mock_anthropic: MockAnthropic, stream: bool
) -> None:
    impatient_gateway = gateway_with(first_token_timeout=2)
    mock_anthropic.always(Hang())
    _, key = impatient_gateway.create_key()

    with (
        openai.OpenAI(api_key=key, base_url=impatient_gateway.base_url, max_retries=0) as waiting,
        ThreadPoolExecutor(1) as pool,
    ):
        failing = pool.submit(failed_request, waiting, stream)
        mock_anthropic.wait_for_requests(1)
        answering = talking_to(mock_anthropic.port)
        error, took = failing.result(timeout=30)

    assert len(answering) == 1
    assert error.status_code == 504
    assert error.code == "upstream_timeout"
    assert 2 <= took < 5
    assert eventually(lambda: all_gone(answering), within=1.0)
    check_upstream_error(error, mock_anthropic)
