"""Records the replay fixtures: what the real Claude Code CLI says, against the mock upstream.

Run `.venv/bin/python -m tests.record_replays` (all cases) or `... record_replays plain_text tool_call`
(some). Each case starts the CLI bundled with claude-agent-sdk through `ClaudeSDKClient`, with the
options the gateway uses where they shape the messages (no tools of Claude Code's own, the client's
functions as the SDK MCP server `client`, each call handed back by a denying permission callback,
`output_format` for a structured answer, partial messages on), asks one prompt, and writes the
stream-json objects the SDK parses into Messages, up to and including the result, to
`tests/fixtures/replays/<case>.jsonl`, one object a line. Control messages (permission requests, MCP
calls) are answered inside the SDK and are not part of the message stream, so they are not recorded.
Paths, uuids and durations are replaced by fixed values so a re-recording changes only what the CLI
really does differently. `tests/replay.py` plays the files back.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    PermissionResultDeny,
    SdkMcpTool,
    ToolPermissionContext,
    create_sdk_mcp_server,
    project_key_for_directory,
)
from claude_agent_sdk._internal.message_parser import parse_message
from claude_agent_sdk.types import ResultMessage

from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, Reply, Scripted, ToolUse, Usage

FIXTURES = Path(__file__).parent / "fixtures" / "replays"
MODEL = "claude-sonnet-4-5-20250929"
OAUTH_TOKEN = "sk-ant-oat01-replay-recording-token"
# A fixed reset time (2100-01-01) keeps the usage-limit fixture stable.
USAGE_LIMIT_RESET = 4_102_444_800

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "description": "The local time in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
}
LONG_TEXT = (
    "Once upon a time, in a quiet town by the sea, a lighthouse keeper counted the waves every night. "
    "He wrote each number in a blue notebook, and when the notebook was full he started another. "
    "After forty years the shelves held a hundred notebooks, and the sea was exactly as loud as before."
)


@dataclass(frozen=True)
class Case:
    """One recording: the prompt, what the mock answers, and the options the request would set."""

    prompt: str
    replies: tuple[Scripted, ...] = ()
    fallback: Scripted | None = None
    tools: tuple[dict[str, Any], ...] = ()
    output_schema: dict[str, Any] | None = None
    max_output_tokens: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    # A broken stream must show its first deltas before the break; timing can hide them, so the
    # recording is made again (up to three times) until they are there.
    streamed_before_break: bool = False


def _call(name: str, arguments: dict[str, Any], call_id: str) -> ToolUse:
    return ToolUse(f"mcp__client__{name}", arguments, id=call_id)


CASES: dict[str, Case] = {
    "plain_text": Case(
        "Say hello",
        (Reply(text="Hello there! How can I help?", usage=Usage(input_tokens=21, output_tokens=7)),),
    ),
    "long_text": Case(
        "Tell me a story",
        (Reply(text=LONG_TEXT, chunk_size=7, usage=Usage(input_tokens=30, output_tokens=80)),),
    ),
    "cached_usage": Case(
        "Say hello again",
        (
            Reply(
                text="Hello again.",
                usage=Usage(
                    input_tokens=4,
                    output_tokens=3,
                    cache_creation_input_tokens=100,
                    cache_read_input_tokens=900,
                ),
            ),
        ),
    ),
    "upstream_stop_sequence": Case(
        "Count to three",
        (Reply(text="one two ", stop_reason="stop_sequence", stop_sequence="three"),),
    ),
    "max_tokens": Case(
        "Write a long story",
        (
            Reply(
                text="The answer was cut h",
                stop_reason="max_tokens",
                usage=Usage(input_tokens=12, output_tokens=5),
            ),
        ),
        max_output_tokens=5,
    ),
    "thinking": Case(
        "Think, then answer",
        (Reply(thinking="The user wants a short answer.", text="Forty-two.", chunk_size=6),),
    ),
    "tool_call": Case(
        "What is the weather in Paris?",
        (
            Reply(
                text="",
                tool_uses=[_call("get_weather", {"city": "Paris", "unit": "celsius"}, "toolu_weather_1")],
                chunk_size=6,
                usage=Usage(input_tokens=50, output_tokens=20),
            ),
        ),
        tools=(WEATHER_TOOL,),
    ),
    "parallel_tool_calls": Case(
        "Weather and time in Paris?",
        (
            Reply(
                text="Let me check both.",
                tool_uses=[
                    _call("get_weather", {"city": "Paris"}, "toolu_weather_1"),
                    _call("get_time", {"city": "Paris"}, "toolu_time_2"),
                ],
                chunk_size=5,
                usage=Usage(input_tokens=60, output_tokens=30),
            ),
        ),
        tools=(WEATHER_TOOL, TIME_TOOL),
    ),
    "structured_output": Case(
        "Weather in Paris, as JSON",
        (Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris", "celsius": 22})], chunk_size=5),),
        output_schema=WEATHER_SCHEMA,
    ),
    "structured_output_retried": Case(
        "Weather in Paris, as JSON",
        (
            Reply(
                tool_uses=[ToolUse("StructuredOutput", {"city": "Paris", "celsius": "warm"})], chunk_size=5
            ),
            Reply(tool_uses=[ToolUse("StructuredOutput", {"city": "Paris", "celsius": 22})], chunk_size=5),
        ),
        output_schema=WEATHER_SCHEMA,
    ),
    "broken_stream_retried": Case(
        "Greet the general",
        (
            Reply(text="Hello there, general", chunk_size=4, delay=0.2, drop_after=2),
            Reply(text="Hello there, general Kenobi.", usage=Usage(input_tokens=15, output_tokens=9)),
        ),
        streamed_before_break=True,
    ),
    "broken_stream_then_error": Case(
        "Greet the general",
        (Reply(text="Hello there, general", chunk_size=4, delay=0.2, drop_after=2),),
        fallback=ErrorReply.server_error(),
        streamed_before_break=True,
    ),
    "unauthorized": Case("Hi", (), fallback=ErrorReply.unauthorized()),
    "usage_limit": Case("Hi", (), fallback=ErrorReply.usage_limit(USAGE_LIMIT_RESET)),
    "overloaded": Case("Hi", (), fallback=ErrorReply.overloaded()),
}


# --- the CLI, with the gateway's options ------------------------------------------------------------


async def _hand_over(
    name: str, arguments: dict[str, Any], context: ToolPermissionContext
) -> PermissionResultDeny:
    # As the gateway's claude/process.py: the client runs its own functions; the turn stops here.
    return PermissionResultDeny(
        message="Handed to the API client, which runs its own functions.", interrupt=True
    )


async def _never_run(arguments: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": "The client runs this tool."}], "is_error": True}


def _options(case: Case, mock_url: str, workspace: Path) -> ClaudeAgentOptions:
    from claude_code_api.claude.process import bundled_cli_path

    home, cwd = workspace / "home", workspace / "work"
    env = {
        "HOME": str(home),
        "TMPDIR": str(workspace),
        "ANTHROPIC_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "",
        "ANTHROPIC_AUTH_TOKEN": "",
        "CLAUDE_CODE_OAUTH_TOKEN": OAUTH_TOKEN,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "API_TIMEOUT_MS": "15000",
        **case.env,
    }
    if case.max_output_tokens is not None:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(case.max_output_tokens)
    servers: dict[str, Any] = {}
    if case.tools:
        tools = [
            SdkMcpTool(
                name=tool["name"],
                description=tool["description"],
                input_schema=tool["input_schema"],
                handler=_never_run,
            )
            for tool in case.tools
        ]
        servers = {"client": create_sdk_mcp_server("client", tools=tools)}
    output_format = None
    if case.output_schema is not None:
        output_format = {"type": "json_schema", "schema": case.output_schema}
    return ClaudeAgentOptions(
        cli_path=bundled_cli_path(),
        cwd=cwd,
        env=env,
        model=MODEL,
        tools=[],
        allowed_tools=[],
        setting_sources=[],
        strict_mcp_config=True,
        mcp_servers=servers,
        can_use_tool=_hand_over if servers else None,
        output_format=output_format,
        include_partial_messages=True,
        verbatim_prompts=True,
        extra_args={"no-session-persistence": None},
    )


def _workspace(root: str) -> Path:
    """The process's folder (its real path, as the CLI reports it), with its home and working folder."""
    workspace = Path(root).resolve()
    (workspace / "home").mkdir()
    (workspace / "work").mkdir()
    return workspace


async def _prompt(text: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": None}


async def record(case: Case, mock: MockAnthropic) -> list[dict[str, Any]]:
    """The stream-json objects the SDK parses for one prompt, up to and including its result."""
    for _ in range(3):
        lines = await _record_once(case, mock)
        if not case.streamed_before_break or any(_is_text_delta(line) for line in lines):
            return lines
    raise RuntimeError("the CLI never showed the deltas before the break; try again on a quieter machine")


def _is_text_delta(line: dict[str, Any]) -> bool:
    return line.get("type") == "stream_event" and line["event"].get("delta", {}).get("type") == "text_delta"


async def _record_once(case: Case, mock: MockAnthropic) -> list[dict[str, Any]]:
    mock.reset()
    mock.queue(*case.replies)
    if case.fallback is not None:
        mock.always(case.fallback)
    with tempfile.TemporaryDirectory(prefix="replay-") as root:
        workspace = _workspace(root)
        client = ClaudeSDKClient(_options(case, mock.url, workspace))
        await client.connect()
        try:
            await client.query(_prompt(case.prompt))
            assert client._query is not None
            lines: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                # The objects receive_response() parses, before parsing: control messages are gone.
                async for data in client._query.receive_messages():
                    lines.append(data)
                    if isinstance(parse_message(data), ResultMessage):
                        break
        finally:
            await client.disconnect()
        return _normalised(lines, str(workspace), mock.url)


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SOCKET = re.compile(rb"/replay/cc-socks/[0-9]+\.sock")
_TIMES = {"timestamp": "2026-01-01T00:00:00.000Z", "written_at": "2026-01-01T00:00:00.000Z"}


def _normalised(lines: list[dict[str, Any]], workspace: str, mock_url: str) -> list[dict[str, Any]]:
    """Fixed values for the workspace path, socket, the mock's port, uuids (numbered in order of appearance),
    durations (`*_ms`) and times."""
    text = orjson.dumps(lines)
    # The project key the CLI derives from its working folder, before the folder itself.
    text = text.replace(project_key_for_directory(Path(workspace) / "work").encode(), b"-replay-work")
    text = text.replace(workspace.encode(), b"/replay")
    text = _SOCKET.sub(b"/replay/cc-socks/1.sock", text)
    text = text.replace(mock_url.removeprefix("http://").encode(), b"127.0.0.1:8080")
    numbers: dict[bytes, bytes] = {}

    def number(match: re.Match[bytes]) -> bytes:
        return numbers.setdefault(match[0], b"00000000-0000-4000-8000-%012d" % (len(numbers) + 1))

    stable: list[dict[str, Any]] = orjson.loads(_UUID.sub(number, text))
    for line in stable:
        for key in line:
            if key.endswith("_ms"):
                line[key] = 0
            elif key in _TIMES:
                line[key] = _TIMES[key]
    return stable


def write(name: str, lines: list[dict[str, Any]]) -> Path:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{name}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n" for line in lines))
    return path


async def main(names: list[str], report: Callable[[str], None] = print) -> None:
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown cases: {', '.join(unknown)}; known: {', '.join(CASES)}")
    with MockAnthropic() as mock:
        for name in names or list(CASES):
            path = write(name, await record(CASES[name], mock))
            report(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    asyncio.run(main(sys.argv[1:]))
