"""An answer that runs out of tokens ends there, in every API, instead of Claude Code going on."""

from __future__ import annotations

import anthropic
import openai

from tests.integration.gateway_harness import GatewayServer
from tests.integration.mock_anthropic import MockAnthropic, Reply, Usage
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)


def _continuations_cut_off(mock: MockAnthropic) -> bool:
    """Claude Code asks the model to go on at once; the gateway ends it before a second answer."""
    return len(mock.message_requests) <= 2


CUT = Reply(
    text="The answer was cut h", stop_reason="max_tokens", usage=Usage(input_tokens=12, output_tokens=5)
)


def test_chat_answer_cut_for_length_has_finish_reason_length(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(CUT)

    answer = client.chat.completions.create(
        model="sonnet", max_tokens=5, messages=[{"role": "user", "content": "long story"}]
    )

    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == "The answer was cut h"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 5)
    assert _continuations_cut_off(mock_anthropic)
    assert mock_anthropic.last_request.body["max_tokens"] == 5


def test_streamed_chat_answer_cut_for_length_ends_with_length(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(CUT)

    chunks = list(
        client.chat.completions.create(
            model="sonnet", max_tokens=5, stream=True, messages=[{"role": "user", "content": "long story"}]
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The answer was cut h"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert _continuations_cut_off(mock_anthropic)


def test_messages_api_answer_cut_for_length_stops_with_max_tokens(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(CUT)
    with anthropic.Anthropic(api_key=api_key, base_url=gateway_server.url, max_retries=0) as claude:
        message = claude.messages.create(
            model="sonnet", max_tokens=5, messages=[{"role": "user", "content": "long story"}]
        )

    assert message.stop_reason == "max_tokens"
    assert _continuations_cut_off(mock_anthropic)


def test_responses_api_answer_cut_for_length_is_incomplete(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(CUT)
    with openai.OpenAI(api_key=api_key, base_url=gateway_server.base_url, max_retries=0) as client:
        response = client.responses.create(model="sonnet", max_output_tokens=16, input="long story")

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert _continuations_cut_off(mock_anthropic)
