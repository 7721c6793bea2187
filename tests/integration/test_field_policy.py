"""The field policy through the real gateway and the official clients: ignored fields named in the
`x-ignored-fields` header of JSON and streamed answers on every API, refused ones a 400 naming them,
unknown ones refused in strict mode, huge integers a 400, empty text answered, thinking passed to
Claude Code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.gateway_harness import GatewayServer, make_settings
from tests.integration.mock_anthropic import MockAnthropic
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

HEADER = "x-ignored-fields"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
HI = [{"role": "user", "content": "Hi"}]


def named(response: Any) -> set[str]:
    """The paths the `x-ignored-fields` header names (clients may order a body's fields their way)."""
    return set(response.headers[HEADER].split(", "))


@pytest.fixture
def claude_client(gateway_server: GatewayServer, api_key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=api_key, base_url=gateway_server.url, max_retries=0, timeout=30) as c:
        yield c


def test_chat_names_ignored_fields_in_the_json_answer(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet", messages=HI, presence_penalty=0.5, seed=7, logit_bias={"50256": -100}
    )

    assert named(raw) == {"presence_penalty", "seed", "logit_bias"}
    assert raw.parse().choices[0].message.content


def test_chat_names_ignored_fields_in_the_stream(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="sonnet", messages=HI, stream=True, frequency_penalty=1, extra_body={"frobnicate": 1}
    ) as response:
        assert named(response) == {"frequency_penalty", "frobnicate"}
        chunks = list(response.parse())
    assert chunks


def test_chat_without_ignored_fields_has_no_header(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="sonnet", messages=HI)
    assert HEADER not in raw.headers


def test_a_hostile_unknown_field_name_is_escaped_in_the_header(
    gateway_server: GatewayServer, api_key: str
) -> None:
    response = httpx.post(
        gateway_server.url + "/v1/chat/completions",
        content=b'{"model":"sonnet","messages":[{"role":"user","content":"Hi"}],'
        + '"a\\r\\nx-forged: 1":1,"ключ":2}'.encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 200
    assert "x-forged" not in response.headers
    assert response.headers[HEADER] == "a\\u000d\\u000ax-forged: 1, \\u043a\\u043b\\u044e\\u0447"


def test_responses_names_ignored_fields_and_hosted_tools(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model="sonnet",
        input="Hi",
        store=True,
        include=["reasoning.encrypted_content"],
        tools=[{"type": "web_search"}],
    )
    assert named(raw) == {"tools[0]", "store", "include[0]"}

    with client.responses.with_streaming_response.create(
        model="sonnet", input="Hi", stream=True, truncation="auto"
    ) as response:
        assert named(response) == {"truncation"}
        assert list(response.iter_lines())


def test_messages_names_ignored_fields_in_json_and_stream(claude_client: anthropic.Anthropic) -> None:
    extra = {"context_management": {"edits": []}, "speed": "fast", "temperature": 0.2}
    raw = claude_client.messages.with_raw_response.create(
        model="sonnet", max_tokens=50, messages=HI, extra_body=extra
    )
    assert named(raw) == {"temperature", "context_management", "speed"}

    with claude_client.messages.with_streaming_response.create(
        model="sonnet", max_tokens=50, messages=HI, stream=True, extra_body={"top_k": 3}
    ) as response:
        assert named(response) == {"top_k"}
        assert list(response.iter_lines())


@pytest.mark.parametrize(
    ("thinking", "upstream"),
    [
        ({"type": "enabled", "budget_tokens": 2048}, {"type": "enabled", "budget_tokens": 2048}),
        ({"type": "disabled"}, {"type": "disabled"}),
    ],
)
def test_thinking_reaches_claude_code(
    claude_client: anthropic.Anthropic, mock_anthropic: MockAnthropic, thinking: Any, upstream: Any
) -> None:
    # Claude Code applies a budget or "disabled" on models that take them (newer models think
    # adaptively whatever the option says), so the test names one.
    message = claude_client.messages.create(
        model="claude-sonnet-4-5", max_tokens=4096, messages=HI, thinking=thinking
    )

    assert message.content
    sent = mock_anthropic.message_requests[-1].body
    assert sent.get("thinking", {"type": "disabled"})["type"] == upstream["type"]
    if upstream["type"] == "enabled":
        assert sent["thinking"].get("budget_tokens") == upstream["budget_tokens"]


def test_refused_field_is_a_400_naming_it(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="sonnet", input="Hi", previous_response_id="resp_1")
    assert raised.value.param == "previous_response_id"
    assert not mock_anthropic.message_requests


HUGE = b"18446744073709551616"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            b'{"model":"sonnet","messages":[{"role":"user","content":"Hi"}],"max_tokens":%s}',
            "max_tokens",
        ),
        ("/v1/responses", b'{"model":"sonnet","input":"Hi","max_output_tokens":%s}', "max_output_tokens"),
        (
            "/v1/messages",
            b'{"model":"sonnet","messages":[{"role":"user","content":"Hi"}],"max_tokens":%s}',
            "max_tokens",
        ),
    ],
)
def test_a_huge_integer_is_a_400_naming_the_field(
    gateway_server: GatewayServer,
    api_key: str,
    mock_anthropic: MockAnthropic,
    path: str,
    body: bytes,
    param: str,
) -> None:
    response = httpx.post(
        gateway_server.url + path,
        content=body % HUGE,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert param in error["message"]
    if path != "/v1/messages":
        assert error["param"] == param
    assert not mock_anthropic.message_requests


def test_empty_text_is_answered_and_never_reaches_the_upstream_empty(
    client: openai.OpenAI, claude_client: anthropic.Anthropic, mock_anthropic: MockAnthropic
) -> None:
    chat = client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": ""}])
    assert chat.choices[0].message.content
    message = claude_client.messages.create(
        model="sonnet",
        max_tokens=50,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": ""}]}
        ],
    )
    assert message.content
    response = client.responses.create(
        model="sonnet", input=[{"role": "user", "content": [{"type": "input_text", "text": " "}]}]
    )
    assert response.output_text

    for request in mock_anthropic.message_requests:
        for turn in request.body["messages"]:
            blocks = (
                turn["content"]
                if isinstance(turn["content"], list)
                else [{"type": "text", "text": turn["content"]}]
            )
            assert all(block.get("type") != "text" or block["text"].strip() for block in blocks)


@pytest.mark.parametrize(
    "fixture", ["claude-code-stream-json.json", "codex-tool-output.json", "ai-sdk-chat-settings.json"]
)
def test_captured_client_requests_are_answered(
    gateway_server: GatewayServer, api_key: str, fixture: str
) -> None:
    captured = json.loads((FIXTURES / fixture).read_text())
    body = {**captured["body"], "stream": False}
    body.pop("stream_options", None)

    response = httpx.post(
        gateway_server.url + captured["path"],
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )

    assert response.status_code == 200, response.text
    assert response.headers[HEADER]


@pytest.fixture
def strict_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    settings = make_settings(tmp_path / "strict", mock_anthropic.url, strict_request_fields=True)
    with GatewayServer(settings) as server:
        yield server


def test_strict_mode_refuses_unknown_fields_by_name(strict_gateway: GatewayServer) -> None:
    key = strict_gateway.create_key()[1]
    with openai.OpenAI(api_key=key, base_url=strict_gateway.base_url, max_retries=0, timeout=30) as strict:
        with pytest.raises(openai.BadRequestError) as raised:
            strict.chat.completions.create(model="sonnet", messages=HI, extra_body={"frobnicate": 1})
        assert raised.value.param == "frobnicate"
        # known ignored fields stay ignored
        raw = strict.chat.completions.with_raw_response.create(model="sonnet", messages=HI, seed=1)
        assert named(raw) == {"seed"}
