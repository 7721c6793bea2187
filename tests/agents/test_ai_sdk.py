"""The Vercel AI SDK (`ai` with `@ai-sdk/anthropic` and `@ai-sdk/openai`, pinned in tests/clients) as an
application uses it: `generateText` and `streamText` through `/v1/messages` (`@ai-sdk/anthropic`),
`/v1/chat/completions` (`openai.chat`) and `/v1/responses` (`openai.responses`), each without and with
a tool (`get_weather`) that the SDK runs on its side and whose result it sends back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.clients import AgentGateway, result_text, run_ai_sdk, synthetic_turns, tool_results
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply, ToolUse

ANSWER = "Hello from behind the gateway."
PROVIDERS = ("anthropic", "chat", "responses")
CALLS = ("generate", "stream")


def _weather_then_answer(request: RecordedRequest) -> Reply:
    results = tool_results(request)
    if results:
        return Reply(text=f"Paris: {result_text(results[0])}")
    return Reply(text="", tool_uses=[ToolUse("mcp__client__get_weather", {"city": "Paris"})])


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_prompt_answers(
    node: str,
    node_clients: Path,
    gateway: AgentGateway,
    mock_anthropic: MockAnthropic,
    tmp_path: Path,
    provider: str,
    call: str,
) -> None:
    mock_anthropic.always(Reply(text=ANSWER, chunk_size=5))

    finished = run_ai_sdk(node, gateway, tmp_path, f"{provider}-{call}")

    assert finished.returncode == 0, finished.explain()
    [result] = finished.json_lines()
    assert (result["text"], result["finishReason"], result["steps"]) == (ANSWER, "stop", 1), result
    if call == "stream":
        assert result["streamed"] == ANSWER
    assert mock_anthropic.model_requests[-1].user_text == "Say hello."


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_loop_runs_the_tool_in_the_sdk_and_resumes_the_waiting_process(
    node: str,
    node_clients: Path,
    gateway: AgentGateway,
    mock_anthropic: MockAnthropic,
    tmp_path: Path,
    provider: str,
    call: str,
) -> None:
    mock_anthropic.always(_weather_then_answer)
    before = gateway.counters()

    finished = run_ai_sdk(node, gateway, tmp_path, f"{provider}-{call}-tool")

    assert finished.returncode == 0, finished.explain()
    [result] = finished.json_lines()
    weather = {"city": "Paris", "temperatureC": 21, "sky": "clear"}
    assert result["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert result["toolResults"] == [{"name": "get_weather", "output": weather}]
    assert (result["finishReason"], result["steps"]) == ("stop", 2), result
    assert result["text"].startswith("Paris: ")
    calls, answer = mock_anthropic.model_requests
    assert "mcp__client__get_weather" in [tool["name"] for tool in calls.body["tools"]]
    [sent] = tool_results(answer)
    assert '"temperatureC":21' in result_text(sent).replace(" ", "")
    assert not synthetic_turns(answer)
    moved = gateway.counted_since(before)
    assert (moved["tool_call_parks"], moved["tool_call_resumes"]) == (1, 1), moved
