"""The first turn of a fresh Claude Code process against its later turns, and warm-ups that send nothing
upstream.

Each round starts one fresh process per candidate, one after the other (so that a change in the machine's
load hits every candidate alike), the way the runner starts a spare: `ClaudeProcess.spawn` with the
runner's options and launcher, at low priority, raised to normal before its first turn. The process idles
`--idle` seconds, the candidate warms it up, then it answers `--turns` new one-message conversations,
each rewound after its answer as the pool does. The mock upstream runs in this process
(tests/integration/mock_anthropic.py, answering at once) because its log is needed: when each request
arrived, and what it held. A candidate fails the run if it made any upstream request, or if a turn's
request held anything but that turn's prompt.

Candidates:
  none                   no warm-up: the floor
  warm_up                `ClaudeProcess.warm_up`, which the runner gives every spare: a prompt sent with
                         `shouldQuery: false` (appended, no turn), then rewound
  set_model ... export   control requests of the CLI's stream-json protocol that reach no upstream
                         (`get_context_usage` is left out: it calls the upstream's count endpoint)

Prints, per candidate, the warm-up's own time and, per turn, the medians over `--processes` rounds of:
prompt written -> request at the mock, request at the mock -> first text delta, prompt written -> first
text delta, prompt written -> result; then the first turn's extra (median over rounds of turn 1 minus the
last turn, first text delta), and how many connections each process held to the upstream.

Usage: .venv/bin/python bench/measure_first_turn.py [--processes 15] [--turns 3] [--idle 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from _harness import FAKE_OAUTH_TOKEN, ROOT, banner, machine, time_limit
from claude_agent_sdk import ResultMessage, StreamEvent

from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import ClaudeRequest
from claude_code_api.claude import launcher
from claude_code_api.claude.process import ClaudeProcess
from claude_code_api.config import Settings, load_settings
from claude_code_api.upstream import UpstreamCredential

sys.path.insert(0, str(ROOT))  # the mock upstream lives with the integration tests
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply

MODEL = "sonnet"
SYSTEM_PROMPT = "Answer in one short paragraph."
ANSWER = "The gateway keeps Claude Code processes warm so that the first token arrives quickly."
TIME_LIMIT_SECONDS = 15 * 60

Warm = Callable[[ClaudeProcess], Awaitable[object]]

CANDIDATES: dict[str, Warm | None] = {
    "none": None,
    "warm_up": lambda process: process.warm_up(),
    "set_model": lambda process: process._control({"subtype": "set_model", "model": MODEL}),
    "set_permission_mode": lambda process: process._control(
        {"subtype": "set_permission_mode", "mode": "default"}
    ),
    "mcp_status": lambda process: process._control({"subtype": "mcp_status"}),
    "get_settings": lambda process: process._control({"subtype": "get_settings"}),
    "interrupt": lambda process: process._control({"subtype": "interrupt"}),
    # An unknown uuid: the CLI answers `target_not_found` and changes nothing.
    "rewind_unknown": lambda process: process._control(
        {"subtype": "rewind_conversation", "target_message_uuid": str(uuid.uuid4())}
    ),
    "export_conversation": lambda process: process._control({"subtype": "export_conversation"}),
}


@dataclass(frozen=True)
class TurnTimes:
    """Seconds from writing the prompt to each point of one turn."""

    at_mock: float
    first: float
    done: float
    connections: int


@dataclass
class Figures:
    warm_up: list[float] = field(default_factory=list)
    rounds: list[list[TurnTimes]] = field(default_factory=list)


def _request(prompt: str) -> ClaudeRequest:
    return ClaudeRequest(
        model=MODEL, system_prompt=SYSTEM_PROMPT, history=(), prompt=({"type": "text", "text": prompt},)
    )


def _said(request: RecordedRequest) -> list[tuple[str, str]]:
    """The conversation of an upstream request, Claude Code's own context messages left out."""
    said = []
    for message in request.body["messages"]:
        if message["role"] == "system":
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        said.append((message["role"], " | ".join(str(block.get("text", block)) for block in blocks)))
    return said


def _connections(process: ClaudeProcess, port: int) -> int:
    """The CLI's TCP connections to the mock now."""
    pid = process.workspace.pid()
    try:
        found = psutil.Process(pid).net_connections(kind="tcp") if pid is not None else []
    except psutil.Error:
        return -1
    return sum(1 for connection in found if connection.raddr and connection.raddr.port == port)


async def _turn(process: ClaudeProcess, mock: MockAnthropic, prompt: str) -> TurnTimes:
    """One new one-message conversation, rewound out of the process after its answer."""
    before = len(mock.requests)
    written = time.monotonic()
    turn = await process.ask(_request(prompt), "")
    first: float | None = None
    async for message in turn.messages():
        if isinstance(message, StreamEvent) and first is None:
            event = message.event
            if event.get("type") == "content_block_delta" and event["delta"].get("type") == "text_delta":
                first = time.monotonic()
        elif isinstance(message, ResultMessage):
            break
    done = time.monotonic()
    sent = mock.requests[before:]
    if len(sent) != 1 or _said(sent[0]) != [("user", prompt)]:
        raise RuntimeError(f"a turn sent more than its prompt: {[_said(request) for request in sent]}")
    if first is None or turn.prompt_uuid is None:
        raise RuntimeError("the turn streamed no text, or its prompt was not replayed")
    times = TurnTimes(
        sent[0].received_at - written, first - written, done - written, _connections(process, mock.port)
    )
    await process.rewind_prompt(turn.prompt_uuid)
    return times


async def _round(
    name: str, warm: Warm | None, number: int, args: argparse.Namespace, paths: tuple[Settings, Path, Path]
) -> tuple[float, list[TurnTimes]]:
    settings, launcher_path, runtime_dir = paths
    credential = UpstreamCredential(kind="subscription", secret=FAKE_OAUTH_TOKEN, name="bench")
    spec = RunSpec.on(credential, _request(""))
    process = await ClaudeProcess.spawn(spec, settings, launcher_path, runtime_dir, low_priority=True)
    try:
        await asyncio.sleep(args.idle)
        started = time.monotonic()
        if warm is not None:
            await warm(process)
        warm_up = time.monotonic() - started
        process.raise_priority()  # as the runner does when it hands a spare a request
        mock = args.mock
        before = len(mock.requests)
        turns = [await _turn(process, mock, f"Question {number}.{n} ({name})") for n in range(args.turns)]
        if len(mock.requests) - before != args.turns:
            raise RuntimeError(f"{name} made upstream requests of its own")
        return warm_up, turns
    finally:
        await process.stop(running=False)


async def measure(
    args: argparse.Namespace, names: list[str], paths: tuple[Settings, Path, Path]
) -> dict[str, Figures]:
    figures = {name: Figures() for name in names}
    for number in range(args.processes):
        for name in names:
            warm_up, turns = await _round(name, CANDIDATES[name], number, args, paths)
            figures[name].warm_up.append(warm_up)
            figures[name].rounds.append(turns)
        print(f"round {number + 1}/{args.processes} done", flush=True)
    return figures


def _paths(runtime_dir: Path, upstream: str) -> tuple[Settings, Path, Path]:
    """Settings pointing at the mock, and the runner's launcher, written as the runner writes it."""
    launcher_path = runtime_dir / "claude-launcher"
    launcher_path.write_text(f"#!{sys.executable} -IS\n{Path(launcher.__file__).read_text()}")
    launcher_path.chmod(0o700)
    settings = load_settings(
        data_dir=runtime_dir / "data", anthropic_base_url=upstream, upstream_max_retries=0
    )
    return settings, launcher_path, runtime_dir


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f}"


def report(figures: dict[str, Figures]) -> None:
    print(
        f"\n{'candidate':<20} {'warm-up':>8}  {'turn':>4} {'to mock':>8} {'mock->1st':>9} {'1st':>8} "
        f"{'done':>8}  {'1st extra':>9}  connections"
    )
    for name, found in figures.items():
        turns = len(found.rounds[0])
        extra = _ms([times[0].first - times[-1].first for times in found.rounds])
        connections = sorted({times.connections for each in found.rounds for times in each})
        for n in range(turns):
            column = [times[n] for times in found.rounds]
            label = (name, _ms(found.warm_up)) if n == 0 else ("", "")
            tail = f"  {extra:>9}  {connections}" if n == 0 else ""
            print(
                f"{label[0]:<20} {label[1]:>8}  {n + 1:>4} {_ms([t.at_mock for t in column])} "
                f"{_ms([t.first - t.at_mock for t in column]):>9} {_ms([t.first for t in column])} "
                f"{_ms([t.done for t in column])}{tail}"
            )
    print(
        "\nms, medians over rounds. to mock: prompt written -> the CLI's request at the mock; 1st: -> first "
        "text delta; done: -> result. 1st extra: turn 1 minus the last turn (1st), per round. No candidate "
        "made an upstream request, and every request held only its turn's prompt."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=15, help="fresh processes per candidate")
    parser.add_argument("--turns", type=int, default=3, help="turns per process (default 3)")
    parser.add_argument("--idle", type=float, default=0.5, help="seconds a process idles before its warm-up")
    parser.add_argument(
        "--candidates", default=",".join(CANDIDATES), help=f"comma-separated, of: {', '.join(CANDIDATES)}"
    )
    args = parser.parse_args()
    names = args.candidates.split(",")
    unknown = set(names) - set(CANDIDATES)
    if unknown:
        parser.error(f"unknown candidates: {', '.join(sorted(unknown))}")
    banner(f"measure_first_turn: {args.processes} processes per candidate, {args.turns} turns; {machine()}")
    with (
        time_limit(TIME_LIMIT_SECONDS, "measure_first_turn"),
        MockAnthropic() as mock,
        tempfile.TemporaryDirectory(prefix="ccapi-bench-") as runtime,
    ):
        mock.always(Reply(text=ANSWER, chunk_size=8))
        args.mock = mock
        report(asyncio.run(measure(args, names, _paths(Path(runtime), mock.url))))


if __name__ == "__main__":
    main()
