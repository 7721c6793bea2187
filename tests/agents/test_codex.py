"""The Codex CLI (`@openai/codex`, pinned in tests/clients) as a client of `/v1/responses`: `codex exec`
with a custom model provider pointed at the gateway (`wire_api = "responses"`).

Codex's shell tool (`exec_command`) is the client's: Claude calls it as the client function
`mcp__client__exec_command`, Codex runs the command in its own sandbox and working directory and sends
the output back in a `function_call_output`, framed in its own text ("Process exited with code 0 ...
Output: ...").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.clients import AgentGateway, Finished, result_text, run_codex, synthetic_turns, tool_results
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply, ToolUse

ANSWER = "Hello from behind the gateway."

pytestmark = pytest.mark.usefixtures("node_clients")


def _agent_messages(finished: Finished) -> list[str]:
    return [
        event["item"]["text"]
        for event in finished.json_lines()
        if event.get("type") == "item.completed" and event["item"].get("type") == "agent_message"
    ]


def test_a_one_shot_exec_answers(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    mock_anthropic.always(Reply(text=ANSWER))
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()

    finished = run_codex(gateway, home, work, "Say hello.")

    assert finished.returncode == 0, finished.explain()
    assert _agent_messages(finished) == [ANSWER]
    assert any(event.get("type") == "turn.completed" for event in finished.json_lines())
    assert mock_anthropic.model_requests[-1].user_text == "Say hello."


SHELL_STEPS = ("echo hello", "pwd")


def _shell_then_answer(request: RecordedRequest) -> Reply:
    """Claude runs `echo hello`, then `pwd`, in Codex's shell, then answers with the last output."""
    done = sum(
        1
        for message in request.body["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    )
    if done < len(SHELL_STEPS):
        return Reply(text="", tool_uses=[ToolUse("mcp__client__exec_command", {"cmd": SHELL_STEPS[done]})])
    output = result_text(tool_results(request)[0])
    printed = output.partition("Output:\n")[2].splitlines()[0]
    return Reply(text=f"Ran in {printed}")


def test_its_shell_tool_runs_on_the_client_in_one_waiting_process(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    mock_anthropic.always(_shell_then_answer)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    before = gateway.counters()

    finished = run_codex(gateway, home, work, "Run echo hello in the shell, then pwd.")

    assert finished.returncode == 0, finished.explain()
    commands = [
        event["item"]
        for event in finished.json_lines()
        if event.get("type") == "item.completed" and event["item"].get("type") == "command_execution"
    ]
    # Codex runs each command through its shell: `/bin/bash -lc <cmd, quoted when it has spaces>`.
    assert [(item["command"].split(" -lc ")[-1].strip("'"), item["exit_code"]) for item in commands] == [
        (step, 0) for step in SHELL_STEPS
    ]
    assert [item["aggregated_output"] for item in commands] == ["hello\n", f"{work}\n"]
    # The command ran in Codex's working directory, on the client's side.
    assert _agent_messages(finished) == [f"Ran in {work}"]
    calls, echoed, answer = mock_anthropic.model_requests
    offered = [tool["name"] for tool in calls.body["tools"]]
    assert "mcp__client__exec_command" in offered
    assert "Bash" not in offered
    [result] = tool_results(echoed)
    # Codex frames a command's output in its own text ("Process exited with code 0 ... Output:").
    assert "Output:\nhello" in result_text(result)
    assert not synthetic_turns(echoed)
    assert not synthetic_turns(answer)
    moved = gateway.counted_since(before)
    assert (moved["tool_call_parks"], moved["tool_call_resumes"]) == (2, 2), moved
