"""Warm and kept Claude processes: reused only for the same token, options and exact conversation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import MockAnthropic, Reply


@pytest.fixture
def warm_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    server = GatewayServer(make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1)).start()
    try:
        yield server
    finally:
        server.stop()
    assert not claude_processes()


def _ask(server: GatewayServer, key: str, messages: Any) -> ChatCompletion:
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        return client.chat.completions.create(model="sonnet", messages=messages)


def _started(server: GatewayServer) -> int:
    assert server.gateway is not None
    return server.gateway.runner.stats().started


def _wait_for_idle(server: GatewayServer, count: int) -> None:
    assert server.gateway is not None
    deadline = time.monotonic() + 10
    while server.gateway.runner.stats().warm_idle < count:
        assert time.monotonic() < deadline, "the warm process did not start"
        time.sleep(0.02)


def _upstream_turns(mock: MockAnthropic) -> list[tuple[str, str]]:
    turns = []
    for message in mock.last_request.body["messages"]:
        if message["role"] == "system":
            continue
        content = message["content"]
        text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
        turns.append((message["role"], text))
    return turns


def test_a_second_request_is_answered_by_the_spare_started_after_the_first(
    warm_gateway: GatewayServer,
) -> None:
    _, key = warm_gateway.create_key()
    _ask(warm_gateway, key, [{"role": "user", "content": "one"}])
    _wait_for_idle(warm_gateway, 2)  # the spare and the process that now holds "one"
    started = _started(warm_gateway)

    answer = _ask(warm_gateway, key, [{"role": "user", "content": "two"}])

    assert answer.choices[0].message.content == "Echo: two"
    spare_replacement = 1
    assert _started(warm_gateway) == started + spare_replacement


def test_a_continued_conversation_takes_its_next_turn_in_the_same_process(
    warm_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = warm_gateway.create_key()
    first = _ask(warm_gateway, key, [{"role": "user", "content": "hello"}])
    _wait_for_idle(warm_gateway, 2)
    started = _started(warm_gateway)
    history: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "again"},
    ]

    second = _ask(warm_gateway, key, history)

    assert second.choices[0].message.content == "Echo: again"
    assert _started(warm_gateway) == started
    assert _upstream_turns(mock_anthropic) == [
        ("user", "hello"),
        ("assistant", "Echo: hello"),
        ("user", "again"),
    ]


def test_an_edited_history_gets_a_new_process_that_replays_it(
    warm_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = warm_gateway.create_key()
    _ask(warm_gateway, key, [{"role": "user", "content": "hello"}])
    _wait_for_idle(warm_gateway, 2)
    started = _started(warm_gateway)
    edited: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Something I never said"},
        {"role": "user", "content": "again"},
    ]

    _ask(warm_gateway, key, edited)

    assert _started(warm_gateway) == started + 1
    assert _upstream_turns(mock_anthropic) == [
        ("user", "hello"),
        ("assistant", "Something I never said"),
        ("user", "again"),
    ]


def test_a_process_is_never_reused_for_another_token(
    warm_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, first_key = warm_gateway.create_key("first")
    other_token = make_oauth_token()
    _, second_key = warm_gateway.create_key("second", other_token)
    first = _ask(warm_gateway, first_key, [{"role": "user", "content": "hello"}])
    _wait_for_idle(warm_gateway, 2)
    started = _started(warm_gateway)
    same_history: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "again"},
    ]

    _ask(warm_gateway, second_key, same_history)

    assert _started(warm_gateway) > started
    assert mock_anthropic.last_request.bearer_token == other_token


def test_idle_processes_are_retired(tmp_path: Path, mock_anthropic: MockAnthropic) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, warm_idle_seconds=0.5)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        _ask(server, key, [{"role": "user", "content": "hi"}])
        deadline = time.monotonic() + 10
        while claude_processes():
            assert time.monotonic() < deadline, "idle processes were not retired"
            time.sleep(0.1)
        assert server.gateway is not None
        assert server.gateway.runner.stats().warm_idle == 0
    finally:
        server.stop()


def test_past_the_process_limit_a_request_waits_then_gets_429(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, max_claude_processes=1, queue_timeout=0.5)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        mock_anthropic.queue(Reply(text="slow answer " * 10, delay=0.1, chunk_size=4))
        opened = threading.Event()

        def slow_stream() -> None:
            headers = {"Authorization": f"Bearer {key}"}
            body = {"model": "sonnet", "stream": True, "messages": [{"role": "user", "content": "x"}]}
            with httpx.stream(
                "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=30
            ) as response:
                for _ in response.iter_lines():
                    opened.set()

        worker = threading.Thread(target=slow_stream)
        worker.start()
        assert opened.wait(10)
        with pytest.raises(openai.RateLimitError) as refused:
            _ask(server, key, [{"role": "user", "content": "y"}])
        assert refused.value.response.headers["retry-after"] == "5"
        worker.join(30)
        answer = _ask(server, key, [{"role": "user", "content": "z"}])
        assert answer.choices[0].message.content == "Echo: z"
    finally:
        server.stop()


def test_at_the_process_limit_a_spare_takes_the_place_of_the_oldest_kept_conversation(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, max_claude_processes=2)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        _ask(server, key, [{"role": "user", "content": "first conversation"}])
        _wait_for_idle(server, 2)  # its kept process and a spare: the limit is reached
        _ask(server, key, [{"role": "user", "content": "second conversation"}])
        _wait_for_idle(server, 2)  # the second kept process and a new spare, the first one gone
        started = _started(server)

        _ask(server, key, [{"role": "user", "content": "third conversation"}])

        spare_replacement = 1
        assert _started(server) == started + spare_replacement
        assert server.gateway is not None
        assert server.gateway.runner.stats().warm_idle + server.gateway.runner.stats().running <= 2
    finally:
        server.stop()
