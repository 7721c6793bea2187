"""/v1/chat/completions, the parts beyond tools and JSON: real usage, the cost header and its record,
`stream_options.include_usage`, and the parameters that are refused or accepted."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.integration.gateway_harness import GatewayServer
from tests.integration.mock_anthropic import MockAnthropic, Reply, Usage
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    eventually,
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

HELLO: Any = [{"role": "user", "content": "Say hello"}]


def test_usage_is_claudes_and_the_cost_is_reported_and_recorded(
    gateway_server: GatewayServer, client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(
        Reply(text="Hello", usage=Usage(input_tokens=30, output_tokens=8, cache_read_input_tokens=5))
    )

    raw = client.chat.completions.with_raw_response.create(model="sonnet", messages=HELLO)
    completion = raw.parse()

    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (35, 8, 43)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5
    cost = float(raw.headers["x-claude-cost-usd"])
    assert cost > 0
    gateway = gateway_server.gateway
    assert gateway is not None
    key_id = gateway_server.call(gateway.keys.list_keys())[0].id
    assert eventually(lambda: gateway_server.call(gateway.usage.cost_since(key_id, None)) > 0, within=2.0)
    assert gateway_server.call(gateway.usage.cost_since(key_id, None)) == pytest.approx(cost, abs=1e-6)


def test_include_usage_adds_a_last_chunk_with_usage(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(
        Reply(text="Hello there", chunk_size=3, usage=Usage(input_tokens=12, output_tokens=4))
    )

    chunks = list(
        client.chat.completions.create(
            model="sonnet", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )

    *answer, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (12, 4)
    assert all(chunk.usage is None for chunk in answer)
    assert answer[-1].choices[0].finish_reason == "stop"
    assert (
        "".join(choice.delta.content or "" for chunk in answer for choice in chunk.choices) == "Hello there"
    )


def test_without_include_usage_no_chunk_carries_usage(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    chunks = list(client.chat.completions.create(model="sonnet", messages=HELLO, stream=True))

    assert all(chunk.usage is None and chunk.choices for chunk in chunks)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, "audio"),
        ({"modalities": ["audio"]}, "modalities"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_unsupported_parameter_is_a_400_naming_it(
    client: openai.OpenAI, mock_anthropic: MockAnthropic, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="sonnet", messages=HELLO, **fields)

    assert raised.value.param == param
    assert raised.value.code == "unsupported_parameter"
    assert not mock_anthropic.message_requests


def test_harmless_parameters_are_accepted(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    completion = client.chat.completions.create(
        model="sonnet", messages=HELLO, user="user-1", seed=7, temperature=0.3, top_p=0.5
    )

    assert completion.choices[0].message.content == "Echo: Say hello"
