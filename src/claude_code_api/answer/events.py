"""What an answer is made of: token counts, text and tool-call deltas, the end of a turn, and the
report of a run; plain data, shared by the reader, the loop and every API's encoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from claude_code_api.errors import GatewayError


@dataclass(frozen=True)
class ClaudeUsage:
    """Token counts as Claude reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0

    @classmethod
    def from_claude(cls, usage: dict[str, Any] | None) -> ClaudeUsage:
        usage = usage or {}
        return cls(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_creation_tokens=int(usage.get("cache_creation_input_tokens") or 0),
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        )

    @property
    def prompt_tokens(self) -> int:
        # OpenAI's prompt_tokens include cached ones; Claude counts them apart.
        return self.input_tokens + self.cache_creation_tokens + self.cache_read_tokens


@dataclass(frozen=True)
class TextDelta:
    """New answer text, in order (for a structured answer: the next piece of its JSON)."""

    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    """Claude calls a client function; its arguments follow in ToolCallArguments events."""

    index: int
    call_id: str
    name: str


@dataclass(frozen=True)
class ToolCallArguments:
    """The next piece of a tool call's JSON arguments."""

    index: int
    json: str


@dataclass(frozen=True)
class TurnFinished:
    """The end of Claude's answer, with what it cost."""

    stop_reason: str | None
    usage: ClaudeUsage
    cost_usd: float | None
    model: str | None
    structured_output: Any = None


ReaderEvent = TextDelta | ToolCallStarted | ToolCallArguments | TurnFinished


@dataclass
class ToolCallRecord:
    """A tool call as it stands so far."""

    call_id: str
    name: str
    arguments: str = ""


@dataclass(frozen=True)
class RunReport:
    """How a run went, for usage records and metrics."""

    status: int
    model: str
    usage: ClaudeUsage
    cost_usd: float | None
    first_token_ms: float | None
    total_ms: float
    error: GatewayError | None = None


ReportSink = Callable[[RunReport], None]


# --- the answer, as events every wire format encodes ---------------------------------------------


@dataclass(frozen=True)
class AnswerStarted:
    """Claude has begun to answer: from here on, a failure travels inside the stream."""

    model: str


@dataclass(frozen=True)
class AnswerFinished:
    """The end of the answer. `stop_reason` is Claude's, or "stop_sequence" when one cut the text."""

    stop_reason: str | None
    stop_sequence: str | None
    run: RunReport


AnswerEvent = AnswerStarted | TextDelta | ToolCallStarted | ToolCallArguments | AnswerFinished


@dataclass
class Answer:
    """A whole answer: its text, its tool calls and how it finished."""

    text: str = ""
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    finished: AnswerFinished | None = None

    @property
    def end(self) -> AnswerFinished:
        assert self.finished is not None  # collect_answer returns only finished answers
        return self.finished
