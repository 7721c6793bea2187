"""How many Claude processes a fresh gateway runs at once, and what health says about them (issue 14,
items 2 and 6)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import MockAnthropic, Reply, ToolUse

SLOW_ANSWERS = 5
CONCURRENT_TURNS = 6


@pytest.fixture
def fresh(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A gateway as `serve` starts it: no process limit set, nothing measured yet."""
    settings = make_settings(
        tmp_path / "data", mock_anthropic.url, warm_processes=1, max_claude_processes=None, queue_timeout=2.0
    )
    with GatewayServer(settings) as server:
        yield server
    assert not claude_processes()


def _health(server: GatewayServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/health", timeout=10)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _stream_until_released(
    server: GatewayServer, key: str, opened: threading.Event, ended: list[str]
) -> None:
    body = {"model": "sonnet", "stream": True, "messages": [{"role": "user", "content": "take your time"}]}
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.stream(
            "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=60
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    opened.set()
    finally:
        ended.append(key)


def test_five_slow_answers_on_a_fresh_gateway_do_not_hold_up_another_key(
    fresh: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    slow_token = make_oauth_token()
    _, slow_key = fresh.create_key("slow", slow_token)
    _, other_key = fresh.create_key("other", make_oauth_token())
    assert fresh.gateway is not None
    assert fresh.gateway.runner.stats().process_limit > SLOW_ANSWERS
    # Each slow answer sends two deltas, then nothing until the mock is reset.
    mock_anthropic.queue(
        *(Reply(text="slow " * 20, stall_after=2) for _ in range(SLOW_ANSWERS)), credential=slow_token
    )
    opened = [threading.Event() for _ in range(SLOW_ANSWERS)]
    ended: list[str] = []
    workers = [
        threading.Thread(target=_stream_until_released, args=(fresh, slow_key, event, ended))
        for event in opened
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 60
        while not all(event.is_set() for event in opened):
            # A slow answer refused (429 past the queue's timeout) ends without starting.
            assert not ended, "a slow answer was refused: the gateway ran fewer than five at once"
            assert time.monotonic() < deadline, "the slow answers did not start"
            time.sleep(0.05)

        started = time.monotonic()
        with openai.OpenAI(api_key=other_key, base_url=fresh.base_url, max_retries=0) as client:
            answer = client.chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": "quick one"}]
            )
        waited = time.monotonic() - started

        assert answer.choices[0].message.content == "Echo: quick one"
        assert ended == [], "the slow answers were over before the other key's request"
        assert waited < 30
        assert _health(fresh)["claude_process_states"]["running"] == SLOW_ANSWERS
    finally:
        mock_anthropic.reset()  # ends the stalls
        for worker in workers:
            worker.join(30)


def test_health_reports_running_idle_and_parked_processes(
    fresh: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = fresh.create_key()
    empty = _health(fresh)
    assert empty["claude_processes"] == 0
    assert empty["claude_process_states"] == {"running": 0, "idle": 0, "parked": 0, "starting": 0}

    # A running answer.
    mock_anthropic.queue(Reply(text="slow " * 20, stall_after=2))
    opened, ended = threading.Event(), []
    worker = threading.Thread(target=_stream_until_released, args=(fresh, key, opened, ended))
    worker.start()
    try:
        assert opened.wait(30)
        assert _health(fresh)["claude_process_states"]["running"] == 1
    finally:
        mock_anthropic.reset()
        worker.join(30)

    # An answer that ends at a client function call: its process is parked, waiting for the results.
    mock_anthropic.queue(Reply(text="", tool_uses=[ToolUse("mcp__client__get_weather", {"city": "Oslo"})]))
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    with openai.OpenAI(api_key=key, base_url=fresh.base_url, max_retries=0) as client:
        called = client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[tool]
        )
        assert called.choices[0].finish_reason == "tool_calls"
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "hello"}])

    assert fresh.gateway is not None
    deadline = time.monotonic() + 15
    while True:
        health, stats = _health(fresh), fresh.gateway.runner.stats()
        states = health["claude_process_states"]
        if (states["running"] == 0 and states["starting"] == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert states["parked"] == 1
    assert states["idle"] >= 1
    assert states == {"running": 0, "idle": stats.idle, "parked": 1, "starting": 0}
    # Every process alive is counted, in exactly one state.
    assert health["claude_processes"] == sum(states.values()) == len(claude_processes())


def test_turns_past_the_cores_wait_for_a_cpu_and_all_answer_each_in_its_own_process(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    # One turn per core: with the mock answering at once every turn wants a CPU all its time.
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, turns_per_core=1)
    with GatewayServer(settings) as server:
        _, key = server.create_key()
        client = openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0)

        def ask(n: int) -> str:
            answer = client.chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": f"question {n}"}]
            )
            return answer.choices[0].message.content or ""

        with ThreadPoolExecutor(CONCURRENT_TURNS) as pool:
            # The first round starts the processes (a turn waiting for a start does not count)...
            assert list(pool.map(ask, range(CONCURRENT_TURNS))) == [
                f"Echo: question {n}" for n in range(CONCURRENT_TURNS)
            ]
            # ... the second finds them idle, and all but the first turns wait for a CPU.
            assert list(pool.map(ask, range(CONCURRENT_TURNS, 2 * CONCURRENT_TURNS))) == [
                f"Echo: question {n}" for n in range(CONCURRENT_TURNS, 2 * CONCURRENT_TURNS)
            ]
        assert server.gateway is not None
        stats = server.gateway.runner.stats()
        assert stats.cpu_waits >= 1
        assert stats.waiting_for_cpu == 0
    # Each upstream request held one question alone: nothing of another conversation.
    asked = [r for r in mock_anthropic.requests if (r.user_text or "").startswith("question")]
    assert sorted(r.user_text or "" for r in asked) == sorted(
        f"question {n}" for n in range(2 * CONCURRENT_TURNS)
    )
    assert all(json.dumps(r.body).count("question") == 1 for r in asked)
    assert not claude_processes()
