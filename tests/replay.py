"""A `Runner` that plays back what the real Claude Code CLI said, recorded by `tests/record_replays.py`.

Each fixture in `tests/fixtures/replays/` holds the stream-json objects of one prompt, one a line, up to
and including the result. `ReplayRunner` parses them with the SDK's own message parser, so the answer
loop sees exactly the Messages a `ClaudeSDKClient` would yield, and, like the real runner, ends a failed
run with the GatewayError its result maps to::

    runner = ReplayRunner("plain_text")
    answer = await collect_answer(runner, replay_spec(), reports.append)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from claude_agent_sdk import Message, RateLimitEvent, RateLimitInfo, ResultMessage
from claude_agent_sdk._internal.message_parser import parse_message

from claude_code_api.answer.events import Answer, RunReport
from claude_code_api.answer.loop import RunSpec, StreamEncoder, collect_answer, stream_answer
from claude_code_api.answer.request import ClaudeRequest
from claude_code_api.answer.tools import ClientTool, client_tool_name
from claude_code_api.claude.failures import error_from_result
from claude_code_api.upstream import UpstreamCredential

FIXTURES = Path(__file__).parent / "fixtures" / "replays"
# The model the recordings asked for (tests/record_replays.py MODEL).
RECORDED_MODEL = "claude-sonnet-4-5-20250929"
# The recordings' usage-limit reset (2100-01-01), and a "now" an hour before it.
USAGE_LIMIT_RESET = 4_102_444_800
AN_HOUR_BEFORE_RESET = USAGE_LIMIT_RESET - 3600.0


def replay_names() -> list[str]:
    """Every recorded case."""
    return sorted(path.stem for path in FIXTURES.glob("*.jsonl"))


@cache
def _lines(name: str) -> tuple[bytes, ...]:
    return tuple((FIXTURES / f"{name}.jsonl").read_bytes().splitlines())


def recorded_messages(name: str) -> list[Message]:
    """A recording as the SDK's parser reads it (fresh objects on every call)."""
    parsed = (parse_message(orjson.loads(line)) for line in _lines(name))
    return [message for message in parsed if message is not None]


def replay_spec(
    *,
    stop_sequences: tuple[str, ...] = (),
    output_schema: dict[str, Any] | None = None,
    client_tools: tuple[ClientTool, ...] = (),
    max_output_tokens: int | None = None,
    model: str = RECORDED_MODEL,
) -> RunSpec:
    """A request like the recorded one; only what the answer loop reads matters."""
    request = ClaudeRequest(
        model=model,
        system_prompt=None,
        history=(),
        prompt=({"type": "text", "text": "recorded"},),
        max_output_tokens=max_output_tokens,
        stop_sequences=stop_sequences,
        client_tools=client_tools,
        output_schema=output_schema,
    )
    return RunSpec.on(
        UpstreamCredential("subscription", secret="sk-ant-oat01-replay", name="replay"), request
    )


class ReplayRunner:
    """Plays back one recording as `Runner.run` does: messages up to the result, a GatewayError for a
    failed result (the rate-limit event before it counts), nothing after.

    `now` is the wall clock the usage-limit error measures its retry-after from. `count_tokens`
    answers `tokens`. `runs` lists the specs it was asked to run; `closed` counts the runs that ended.
    """

    def __init__(
        self, name: str, *, now: Callable[[], float] = lambda: AN_HOUR_BEFORE_RESET, tokens: int = 0
    ):
        self.name = name
        self._now = now
        self._tokens = tokens
        self.runs: list[RunSpec] = []
        self.closed = 0

    @contextlib.asynccontextmanager
    async def run(self, spec: RunSpec) -> AsyncIterator[AsyncIterator[Message]]:
        self.runs.append(spec)
        try:
            yield self._messages()
        finally:
            self.closed += 1

    async def count_tokens(self, spec: RunSpec) -> int:
        return self._tokens

    async def _messages(self) -> AsyncIterator[Message]:
        rate_limit: RateLimitInfo | None = None
        for message in recorded_messages(self.name):
            if isinstance(message, RateLimitEvent):
                rate_limit = message.rate_limit_info
            if isinstance(message, ResultMessage):
                if message.is_error and not _handed_over(message):
                    raise error_from_result(message, rate_limit, self._now())
                yield message
                return
            yield message
        raise AssertionError(f"the recording {self.name} has no result")


def _handed_over(result: ResultMessage) -> bool:
    """A turn that stopped at a client function call, which the gateway hands back: not a failure."""
    return result.stop_reason == "tool_use" and any(
        client_tool_name(str(denial.get("tool_name", ""))) is not None
        for denial in result.permission_denials or ()
    )


async def replay_stream(name: str, encoder: StreamEncoder, **spec: Any) -> bytes:
    """The whole stream `stream_answer` sends for a recording, in `encoder`'s format; a failure before
    the first byte propagates."""
    stream = await stream_answer(ReplayRunner(name), replay_spec(**spec), encoder, _ignore)
    return b"".join([chunk async for chunk in stream])


async def replay_answer(name: str, **spec: Any) -> Answer:
    """The whole answer `collect_answer` makes of a recording."""
    return await collect_answer(ReplayRunner(name), replay_spec(**spec), _ignore)


def _ignore(report: RunReport) -> None:
    return None


GOLDEN = Path(__file__).parent / "fixtures" / "encoded"


def assert_golden(relative: str, data: bytes) -> None:
    """`data` is byte for byte the golden file `tests/fixtures/encoded/<relative>`.

    `UPDATE_GOLDEN=1` writes the file instead: review the diff before committing it.
    """
    path = GOLDEN / relative
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"no golden file {relative}; UPDATE_GOLDEN=1 writes it"
    assert data == path.read_bytes()
