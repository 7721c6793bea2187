"""Function calling on /v1/chat/completions, through the official `openai` client.

The mock upstream answers with `tool_use` blocks for `mcp__client__<name>`, as Claude does when the
gateway offers a client's functions: the gateway hands the calls back and runs nothing itself, and the
next request's assistant tool_calls and tool messages reach Claude as tool use and tool results.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply, ToolUse
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME: Any = {"type": "function", "function": {"name": "get_time", "description": "The local time of a city."}}
QUESTION: Any = [{"role": "user", "content": "Weather in Paris and Rome?"}]
PARIS = ToolUse("mcp__client__get_weather", {"city": "Paris"})
ROME = ToolUse("mcp__client__get_weather", {"city": "Rome"})


def upstream_blocks(request: RecordedRequest, kind: str) -> list[dict[str, Any]]:
    return [
        block
        for message in request.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == kind
    ]


def system_text(request: RecordedRequest) -> str:
    return " ".join(block["text"] for block in request.body["system"])


def test_tool_call_comes_back_with_finish_reason_tool_calls(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Let me check.", tool_uses=[PARIS]))

    completion = client.chat.completions.create(model="sonnet", messages=QUESTION, tools=[WEATHER, TIME])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id == "toolu_mock_01"


def test_functions_are_offered_as_client_tools_and_never_run_on_the_server(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(tool_uses=[PARIS]))

    client.chat.completions.create(model="sonnet", messages=QUESTION, tools=[WEATHER, TIME])

    # One upstream request: the turn ended at the call; no tool_result was made up on the server.
    [request] = mock_anthropic.message_requests
    offered = {tool["name"]: tool for tool in request.body["tools"]}
    # Beside the client's functions, the CLI adds only a placeholder it never calls: none of its own tools.
    assert set(offered) - {"DeferredToolPlaceholder"} == {"mcp__client__get_weather", "mcp__client__get_time"}
    assert offered["mcp__client__get_weather"]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert offered["mcp__client__get_time"]["input_schema"]["type"] == "object"


def test_two_step_loop_sends_calls_and_results_to_claude(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(tool_uses=[PARIS]), Reply(text="Paris: 22 °C and sunny."))

    first = client.chat.completions.create(model="sonnet", messages=QUESTION, tools=[WEATHER])
    call = (first.choices[0].message.tool_calls or [])[0]
    follow_up = [
        *QUESTION,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22 °C, sunny"},
    ]
    final = client.chat.completions.create(model="sonnet", messages=follow_up, tools=[WEATHER])

    assert final.choices[0].message.content == "Paris: 22 °C and sunny."
    assert final.choices[0].finish_reason == "stop"
    upstream = mock_anthropic.last_request
    [tool_use] = upstream_blocks(upstream, "tool_use")
    assert (tool_use["id"], tool_use["name"], tool_use["input"]) == (
        call.id,
        "mcp__client__get_weather",
        {"city": "Paris"},
    )
    [tool_result] = upstream_blocks(upstream, "tool_result")
    assert tool_result["tool_use_id"] == call.id
    assert "22 °C, sunny" in str(tool_result["content"])


def test_several_calls_in_one_turn(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    mock_anthropic.queue(Reply(tool_uses=[PARIS, ROME]))

    completion = client.chat.completions.create(model="sonnet", messages=QUESTION, tools=[WEATHER])

    calls = completion.choices[0].message.tool_calls or []
    assert [json.loads(call.function.arguments) for call in calls] == [{"city": "Paris"}, {"city": "Rome"}]  # type: ignore[union-attr]
    assert len({call.id for call in calls}) == 2
    assert completion.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_deltas_carry_their_index_and_reassemble(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.queue(Reply(text="Checking.", tool_uses=[PARIS, ROME], chunk_size=3))

    chunks = list(
        client.chat.completions.create(model="sonnet", messages=QUESTION, tools=[WEATHER], stream=True)
    )

    deltas = [call for chunk in chunks for choice in chunk.choices for call in choice.delta.tool_calls or []]
    assert [delta.index for delta in deltas if delta.id] == [0, 1]
    assert {delta.index for delta in deltas} == {0, 1}
    assert len(deltas) > 4  # arguments arrive in pieces
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    mock_anthropic.queue(Reply(text="Checking.", tool_uses=[PARIS, ROME], chunk_size=3))
    with client.chat.completions.stream(model="sonnet", messages=QUESTION, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()

    message = final.choices[0].message
    assert message.content == "Checking."
    assert [json.loads(call.function.arguments) for call in message.tool_calls or []] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "instruction"),
    [
        ("required", None, "You must answer by calling one or more of the available tools."),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            "You must answer by calling the tool mcp__client__get_weather.",
        ),
        ("auto", False, "Call at most one tool in your answer."),
    ],
)
def test_tool_choice_reaches_claude_as_an_instruction(
    client: openai.OpenAI,
    mock_anthropic: MockAnthropic,
    tool_choice: Any,
    parallel: bool | None,
    instruction: str,
) -> None:
    extra: dict[str, Any] = {} if parallel is None else {"parallel_tool_calls": parallel}
    client.chat.completions.create(
        model="sonnet", messages=QUESTION, tools=[WEATHER], tool_choice=tool_choice, **extra
    )

    assert instruction in system_text(mock_anthropic.last_request)


def test_tool_choice_none_offers_no_functions(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    completion = client.chat.completions.create(
        model="sonnet", messages=QUESTION, tools=[WEATHER], tool_choice="none"
    )

    assert completion.choices[0].message.content == "Echo: Weather in Paris and Rome?"
    assert not mock_anthropic.last_request.body.get("tools")


def test_tool_choice_naming_an_unknown_function_is_refused(
    client: openai.OpenAI, mock_anthropic: MockAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="sonnet",
            messages=QUESTION,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_stock"}},
        )

    assert raised.value.param == "tool_choice"
    assert not mock_anthropic.message_requests
