"""Per-key limits through the real gateway and the official openai client, in memory and in Redis.

Also the key cache's promise: a key revoked here is refused at once, one revoked on another instance
within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from claude_code_api.errors import LimitStoreUnavailableError
from claude_code_api.gateway import Gateway
from claude_code_api.security.ratelimit import MemoryBackend, RedisBackend
from claude_code_api.store.keys import ApiKey
from claude_code_api.store.usage import UsageRecord
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.gateway_harness import GatewayServer, free_port, make_settings
from tests.integration.mock_anthropic import MockAnthropic, Reply, Usage

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
# Long enough that a second request arrives while the stream is still open.
SLOW_REPLY = Reply(text="slowly " * 8, chunk_size=4, delay=0.15)


def gateway_of(server: GatewayServer) -> Gateway:
    assert server.gateway is not None
    return server.gateway


def make_key(server: GatewayServer, **limits: Any) -> tuple[ApiKey, str]:
    return server.call(gateway_of(server).keys.create_key("limits-test", FAKE_OAUTH_TOKEN, **limits))


@contextlib.contextmanager
def client_for(server: GatewayServer, api_key: str) -> Iterator[openai.OpenAI]:
    # No retries: the client would otherwise wait out a Retry-After and try again.
    with openai.OpenAI(api_key=api_key, base_url=server.base_url, max_retries=0) as client:
        yield client


def ask(client: openai.OpenAI, model: str = "sonnet") -> str | None:
    return client.chat.completions.create(model=model, messages=MESSAGES).choices[0].message.content


@contextlib.contextmanager
def gateways(
    data_dir: Path, mock: MockAnthropic, count: int, **overrides: Any
) -> Iterator[list[GatewayServer]]:
    """`count` gateways on one data directory (one SQLite database, one secret), like instances."""
    servers: list[GatewayServer] = []
    try:
        for _ in range(count):
            servers.append(GatewayServer(make_settings(data_dir, mock.url, **overrides)).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


# --- requests per minute and at once -------------------------------------------------------------


def test_requests_over_the_rpm_limit_get_429_with_retry_after(gateway_server):
    _, api_key = make_key(gateway_server, rpm_limit=2)
    with client_for(gateway_server, api_key) as client:
        assert ask(client) == "Echo: hi"
        assert ask(client) == "Echo: hi"
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.type == "rate_limit_error"
    assert "2 requests per minute" in refused.value.message
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    assert "x-should-retry" not in refused.value.response.headers


def test_a_request_while_a_stream_holds_the_only_slot_gets_429_then_passes_after_it(
    gateway_server, mock_anthropic
):
    _, api_key = make_key(gateway_server, concurrency_limit=1)
    mock_anthropic.queue(SLOW_REPLY)
    with client_for(gateway_server, api_key) as client:
        stream = client.chat.completions.create(model="sonnet", messages=MESSAGES, stream=True)
        next(stream)
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == SLOW_REPLY.text
        assert ask(client) == "Echo: hi"
    assert refused.value.code == "rate_limit_exceeded"
    assert "1 requests at once" in refused.value.message
    assert refused.value.response.headers["retry-after"] == "1"


def test_a_client_that_leaves_mid_stream_gives_its_slot_back(gateway_server, mock_anthropic):
    key, api_key = make_key(gateway_server, concurrency_limit=1)
    mock_anthropic.queue(SLOW_REPLY)
    with client_for(gateway_server, api_key) as client:
        stream = client.chat.completions.create(model="sonnet", messages=MESSAGES, stream=True)
        next(stream)
        stream.close()
        assert _eventually(lambda: _held(gateway_server, key) == 0)
        assert ask(client) == "Echo: hi"


def _held(server: GatewayServer, key: ApiKey) -> int:
    backend = gateway_of(server).limiter.backend
    assert isinstance(backend, MemoryBackend)
    return backend.held(key.id)


def _eventually(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_one_rpm_limit_covers_every_endpoint_of_the_key(gateway_server):
    _, api_key = make_key(gateway_server, rpm_limit=2)
    with (
        client_for(gateway_server, api_key) as client,
        anthropic.Anthropic(api_key=api_key, base_url=gateway_server.url, max_retries=0) as claude,
    ):
        assert ask(client) == "Echo: hi"
        claude.messages.create(model="haiku", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as refused:
            client.responses.create(model="sonnet", input="hi")
        with pytest.raises(anthropic.RateLimitError):
            claude.messages.create(model="haiku", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == "rate_limit_exceeded"


# --- models, expiry, budgets ---------------------------------------------------------------------


def test_a_model_the_key_may_not_use_gets_403_naming_the_parameter(gateway_server):
    _, api_key = make_key(gateway_server, allowed_models=["haiku", "sonnet"])
    with client_for(gateway_server, api_key) as client:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            ask(client, model="opus")
        assert ask(client, model="gpt-4-turbo") == "Echo: hi"
    assert refused.value.status_code == 403
    assert refused.value.param == "model"
    assert refused.value.code == "permission_denied"
    assert "may use: haiku, sonnet" in refused.value.message


def test_an_expired_key_gets_429_that_says_so_and_not_to_retry(gateway_server):
    expired_at = datetime.now(UTC) - timedelta(minutes=1)
    _, api_key = make_key(gateway_server, expires_at=expired_at)
    with client_for(gateway_server, api_key) as client:
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
        with pytest.raises(openai.RateLimitError):
            client.models.list()
    assert refused.value.code == "api_key_expired"
    assert f"expired on {expired_at:%Y-%m-%d %H:%M} UTC" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.value.response.headers


def test_a_spent_budget_gets_429_insufficient_quota_and_not_to_retry(gateway_server, mock_anthropic):
    _, api_key = make_key(gateway_server, budget_usd=0.001)
    mock_anthropic.queue(Reply(text="costly", usage=Usage(input_tokens=1000, output_tokens=1000)))
    with client_for(gateway_server, api_key) as client:
        response = client.chat.completions.with_raw_response.create(model="sonnet", messages=MESSAGES)
        assert float(response.headers["x-claude-cost-usd"]) > 0.001
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
    assert refused.value.code == "insufficient_quota"
    assert refused.value.type == "insufficient_quota"
    assert "budget of $0.00" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"


def test_a_budget_period_counts_only_what_was_spent_in_it(gateway_server):
    key, api_key = make_key(gateway_server, budget_usd=1.0, budget_period="day")
    gateway = gateway_of(gateway_server)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    record = UsageRecord(key.id, yesterday, "sonnet", 200, "chat.completions", cost_usd=5.0)
    gateway_server.call(gateway.usage.record(record))
    with client_for(gateway_server, api_key) as client:
        assert ask(client) == "Echo: hi"
        gateway_server.call(gateway.keys.update_key(key.id, budget_period=None))
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client)
    assert refused.value.code == "insufficient_quota"


# --- the key cache and revocation ----------------------------------------------------------------


def test_a_key_revoked_here_is_refused_at_once(gateway_server):
    key, api_key = make_key(gateway_server)
    with client_for(gateway_server, api_key) as client:
        assert ask(client) == "Echo: hi"
        gateway_server.call(gateway_of(gateway_server).keys.revoke_key(key.id))
        with pytest.raises(openai.AuthenticationError):
            ask(client)


def test_a_key_revoked_on_another_instance_is_refused_within_a_second(tmp_path, mock_anthropic):
    with gateways(tmp_path / "data", mock_anthropic, 2) as (first, second):
        key, api_key = make_key(first)
        with client_for(second, api_key) as client:
            assert ask(client) == "Echo: hi"
            first.call(gateway_of(first).keys.revoke_key(key.id))
            time.sleep(1.1)
            with pytest.raises(openai.AuthenticationError):
                ask(client)


# --- shared through Redis ------------------------------------------------------------------------


@pytest.mark.redis
def test_two_gateways_enforce_one_rpm_limit_through_redis(
    tmp_path, mock_anthropic, redis_server, redis_prefix
):
    shared = {"redis_url": redis_server, "redis_key_prefix": redis_prefix}
    with gateways(tmp_path / "data", mock_anthropic, 2, **shared) as (first, second):
        _, api_key = make_key(first, rpm_limit=3)
        with client_for(first, api_key) as on_first, client_for(second, api_key) as on_second:
            assert ask(on_first) == "Echo: hi"
            assert ask(on_second) == "Echo: hi"
            assert ask(on_first) == "Echo: hi"
            with pytest.raises(openai.RateLimitError) as refused:
                ask(on_second)
            with pytest.raises(openai.RateLimitError):
                ask(on_first)
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60


@pytest.mark.redis
def test_two_gateways_enforce_one_concurrency_limit_through_redis(
    tmp_path, mock_anthropic, redis_server, redis_prefix
):
    shared = {"redis_url": redis_server, "redis_key_prefix": redis_prefix}
    with gateways(tmp_path / "data", mock_anthropic, 2, **shared) as (first, second):
        _, api_key = make_key(first, concurrency_limit=1)
        mock_anthropic.queue(SLOW_REPLY)
        with client_for(first, api_key) as on_first, client_for(second, api_key) as on_second:
            stream = on_first.chat.completions.create(model="sonnet", messages=MESSAGES, stream=True)
            next(stream)
            with pytest.raises(openai.RateLimitError) as refused:
                ask(on_second)
            assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            assert ask(on_second) == "Echo: hi"
    assert refused.value.response.headers["retry-after"] == "1"


@pytest.mark.redis
async def test_a_slot_held_by_a_crashed_instance_comes_back_after_its_ttl(redis_server, redis_prefix):
    crashed = await RedisBackend.open(redis_server, redis_prefix, lease_ttl=1.0)
    survivor = await RedisBackend.open(redis_server, redis_prefix, lease_ttl=1.0)
    try:
        assert await crashed.acquire("key", 1) is not None
        # Closing without releasing is what a crash looks like to Redis: the lease is no longer renewed.
        await crashed.aclose()
        assert await survivor.acquire("key", 1) is None
        await asyncio.sleep(1.1)
        lease = await survivor.acquire("key", 1)
        assert lease is not None
        await lease.release()
    finally:
        await survivor.aclose()


@pytest.mark.redis
async def test_a_slot_held_longer_than_its_ttl_is_renewed_until_released(redis_server, redis_prefix):
    holder = await RedisBackend.open(redis_server, redis_prefix, lease_ttl=0.6)
    other = await RedisBackend.open(redis_server, redis_prefix, lease_ttl=0.6)
    try:
        lease = await holder.acquire("key", 1)
        assert lease is not None
        await asyncio.sleep(1.5)
        assert await other.acquire("key", 1) is None
        await lease.release()
        await lease.release()
        again = await other.acquire("key", 1)
        assert again is not None
        await again.release()
    finally:
        await holder.aclose()
        await other.aclose()


async def test_a_gateway_whose_redis_does_not_answer_does_not_start(tmp_path):
    settings = make_settings(
        tmp_path / "data", "http://127.0.0.1:9", redis_url=f"redis://:secret-pw@127.0.0.1:{free_port()}/0"
    )
    with pytest.raises(LimitStoreUnavailableError) as refused:
        await Gateway.open(settings)
    assert "REDIS_URL" in refused.value.message
    assert "secret-pw" not in refused.value.message
