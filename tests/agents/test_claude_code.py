"""Claude Code as a client of `/v1/messages`: the CLI bundled with claude-agent-sdk, default settings,
only ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY pointing at the gateway.

Its tools (Bash, Read, Edit, ...) are the client's: the gateway offers them to Claude as client functions
(`mcp__client__<name>`) and never runs them; the client runs the call in its own working directory and
sends the result back, which reaches the Claude process that waits inside the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agents.clients import AgentGateway, result_text, run_claude, synthetic_turns, tool_results
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply, ToolUse

ANSWER = "Hello from behind the gateway."


def test_a_one_shot_prompt_answers_in_json(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    mock_anthropic.always(Reply(text=ANSWER))
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()

    finished = run_claude(gateway, home, work, "-p", "Say hello.", "--output-format", "json")

    assert finished.returncode == 0, finished.explain()
    result = json.loads(finished.stdout)
    assert (result["type"], result["subtype"], result["is_error"]) == ("result", "success", False)
    assert result["result"] == ANSWER
    assert mock_anthropic.model_requests[-1].user_text == "Say hello."


def test_a_one_shot_prompt_streams_in_stream_json(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    mock_anthropic.always(Reply(text=ANSWER, chunk_size=5))
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()

    finished = run_claude(
        gateway, home, work, "-p", "Say hello.", "--output-format", "stream-json", "--verbose"
    )

    assert finished.returncode == 0, finished.explain()
    events = finished.json_lines()
    assert events[0]["type"] == "system"
    said = [
        block["text"]
        for event in events
        if event["type"] == "assistant"
        for block in event["message"]["content"]
        if block["type"] == "text"
    ]
    assert said == [ANSWER]
    assert (events[-1]["type"], events[-1]["subtype"], events[-1]["result"]) == ("result", "success", ANSWER)


def _bash_then_answer(request: RecordedRequest) -> Reply:
    """Claude calls the client's Bash tool, then answers with what the tool printed."""
    results = tool_results(request)
    if results:
        return Reply(text=f"The command printed: {result_text(results[0]).strip()}")
    command = {"command": "echo hello | tee ran-here.txt", "description": "Print hello"}
    return Reply(text="", tool_uses=[ToolUse("mcp__client__Bash", command)])


def test_its_own_bash_tool_runs_on_the_client_and_the_parked_process_reads_the_result(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    mock_anthropic.always(_bash_then_answer)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    before = gateway.counters()

    finished = run_claude(
        gateway,
        home,
        work,
        "-p",
        "Run echo hello.",
        "--output-format",
        "stream-json",
        "--verbose",
        "--allowedTools",
        "Bash",
    )

    assert finished.returncode == 0, finished.explain()
    events = finished.json_lines()
    assert (events[-1]["subtype"], events[-1]["result"]) == ("success", "The command printed: hello")
    # The client ran the command in its own working directory; nothing ran in the gateway's.
    assert (work / "ran-here.txt").read_text() == "hello\n"
    assert not list(gateway.served.run_dir.rglob("ran-here.txt"))
    assert not list(Path(gateway.served.env["DATA_DIR"]).rglob("ran-here.txt"))
    calls, answer = mock_anthropic.model_requests
    # Claude is offered the client's Bash as a client function; the gateway's Claude Code has no shell.
    offered = {tool["name"]: tool for tool in calls.body["tools"]}
    assert "Bash" not in offered
    assert offered["mcp__client__Bash"]["input_schema"]["required"] == ["command"]
    # Its system prompt and its system-role environment message (its own working directory) reach Claude.
    assert "cc_entrypoint=sdk-cli" in json.dumps(calls.body["system"])
    assert f"Primary working directory: {work}" in json.dumps(calls.body)
    [result] = tool_results(answer)
    assert result_text(result).strip() == "hello"
    assert not result.get("is_error")
    assert not synthetic_turns(answer)
    # The loop went on in the process that made the call: its result went to the parked process.
    moved = gateway.counted_since(before)
    assert (moved["tool_call_parks"], moved["tool_call_resumes"]) == (1, 1), moved


def _write_read_edit_then_answer(note: Path, edit: dict[str, Any]) -> Callable[[RecordedRequest], Reply]:
    """Claude writes a file with the client's Write tool, reads it back, edits it, then answers."""
    steps = [
        ToolUse("mcp__client__Write", {"file_path": str(note), "content": "hello\n"}),
        ToolUse("mcp__client__Read", {"file_path": str(note)}),
        ToolUse("mcp__client__Edit", {"file_path": str(note), **edit}),
    ]

    def reply(request: RecordedRequest) -> Reply:
        done = sum(
            1
            for message in request.body["messages"]
            if message["role"] == "user" and isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        )
        if done < len(steps):
            return Reply(text="", tool_uses=[steps[done]])
        return Reply(text="The note is edited.")

    return reply


def _write_read_edit(
    gateway: AgentGateway, mock: MockAnthropic, tmp_path: Path, edit: dict[str, Any]
) -> tuple[list[RecordedRequest], dict[str, float]]:
    """Runs the Write, Read, Edit session; returns the upstream requests and how the counters moved."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    note = work / "note.txt"
    mock.always(_write_read_edit_then_answer(note, edit))
    before = gateway.counters()

    finished = run_claude(
        gateway,
        home,
        work,
        "-p",
        "Write, read and edit note.txt.",
        "--output-format",
        "json",
        "--allowedTools",
        "Write,Read,Edit",
    )

    assert finished.returncode == 0, finished.explain()
    assert json.loads(finished.stdout)["result"] == "The note is edited."
    assert note.read_text() == "hello, gateway\n"
    requests = mock.model_requests
    assert len(requests) == 4
    [read] = tool_results(requests[2])
    assert "hello" in result_text(read)
    return requests, gateway.counted_since(before)


# The Edit call as Claude Code itself records it: with its optional `replace_all` filled in.
EDIT = {"old_string": "hello", "new_string": "hello, gateway", "replace_all": False}


def test_its_file_tools_edit_the_clients_files_in_one_waiting_process(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    requests, moved = _write_read_edit(gateway, mock_anthropic, tmp_path, EDIT)

    for request in requests[1:]:
        [result] = tool_results(request)
        assert not result.get("is_error"), result
        assert not synthetic_turns(request)
    # All four upstream requests came from one Claude process of the gateway (its own working directory).
    assert len({_gateway_process(request) for request in requests}) == 1
    assert (moved["tool_call_parks"], moved["tool_call_resumes"]) == (3, 3), moved


def test_an_edit_call_sent_back_with_its_defaults_filled_in_still_resumes_the_waiting_process(
    gateway: AgentGateway, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    # Claude calls Edit without `replace_all`; Claude Code sends it back with `"replace_all": false`.
    edit = {key: value for key, value in EDIT.items() if key != "replace_all"}

    requests, moved = _write_read_edit(gateway, mock_anthropic, tmp_path, edit)

    assert (moved["tool_call_parks"], moved["tool_call_resumes"]) == (3, 3), moved
    assert not any(synthetic_turns(request) for request in requests)


def _gateway_process(request: RecordedRequest) -> str:
    """The working directory of the gateway's Claude process that sent the request."""
    found = re.findall(r"Primary working directory: (\S+/run-[^/\s]+/work)", json.dumps(request.body))
    assert found, "no working directory of the gateway's Claude process in the request"
    return str(found[0])
