"""One turn of a live Claude Code process: the messages one request reads, under deadlines.

A turn starts with a prompt and ends with a result. When Claude calls client functions, the request's
answer ends at the call, but the turn does not: the process waits inside the call (`handover.py`) and the
next request that brings the results reads the rest of the same turn. The turn therefore keeps what it has
already reported, so that each request is charged only its own tokens and cost, and records what the
process holds once it is over, for the next request's match.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from claude_agent_sdk import (
    AssistantMessage,
    Message,
    RateLimitEvent,
    RateLimitInfo,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolUseBlock,
    UserMessage,
)

from claude_code_api.answer.blocks import ContentBlock
from claude_code_api.answer.request import ClaudeTurn
from claude_code_api.answer.tools import client_tool_name
from claude_code_api.claude.failures import error_from_result
from claude_code_api.claude.handover import ToolHandOver, ToolOutcome
from claude_code_api.config import Settings
from claude_code_api.errors import GatewayError, UpstreamError, UpstreamTimeoutError


class TurnProcess(Protocol):
    """What a turn needs of its process: its messages, its waiting calls and the cost it has reported."""

    handover: ToolHandOver
    cost_seen: float

    async def next_message(self, within: float) -> Message | ProcessEnded: ...


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True)
class ProcessEnded:
    """The CLI's message stream is over: the process is gone, with the error that ended it if any."""

    error: GatewayError | None


TurnState = Literal["running", "awaiting_tools", "answered", "failed"]


class Turn:
    """Claude Code's messages for one prompt, read request by request.

    `state` says how the last request left it: `awaiting_tools` (the process waits inside the calls in
    `calls`), `answered` (the result came), `failed` (the result was an error), or `running` (the request
    stopped reading before any of these: the turn may still be going on upstream). `reply` is Claude's
    last message as the client was shown it (text and its calls), or None when that cannot be described
    (a structured answer).
    """

    def __init__(self, process: TurnProcess, settings: Settings, start: str) -> None:
        self._process = process
        self._settings = settings
        self.start = start
        self.state: TurnState = "running"
        self.prompt_uuid: str | None = None
        self.calls: tuple[str, ...] = ()
        self.reply: ClaudeTurn | None = None
        self._blocks: list[ContentBlock] = []
        self._usage: dict[str, int] = {}  # of the whole turn so far
        self._reported: dict[str, int] = {}  # of the requests that already read part of it
        self._message_usage: dict[str, int] = {}

    def resume(self, outcomes: Mapping[str, ToolOutcome]) -> None:
        """Hands the client's results to the waiting calls; the next `messages()` reads what follows."""
        self._process.handover.deliver(outcomes)
        self.reply = None
        self._reported = dict(self._usage)
        self.state = "running"

    async def messages(self) -> AsyncGenerator[Message, None]:
        """The turn's messages for one request: up to and including the result, or as far as the
        caller reads (the answer to a client function call ends before the result). Raises
        GatewayError on failure."""
        awaited = set(self.calls)
        self.calls = ()
        rate_limit: RateLimitInfo | None = None
        retry_after: float | None = None
        answering = False
        while True:
            deadline = self._settings.idle_timeout if answering else self._settings.first_token_timeout
            try:
                message = await self._process.next_message(deadline)
            except TimeoutError:
                what = "sent nothing more" if answering else "did not start answering"
                raise UpstreamTimeoutError(
                    f"Claude {what} within {deadline:g} seconds; the request was cancelled."
                ) from None
            if isinstance(message, ProcessEnded):
                raise message.error or UpstreamError("Claude Code ended without a result.")
            if awaited:
                # What the CLI said before the client's results came back was read by the last request.
                if isinstance(message, UserMessage) and message.parent_tool_use_id is None:
                    awaited -= _result_ids(message)
                continue
            if isinstance(message, UserMessage):
                if self.prompt_uuid is None and message.parent_tool_use_id is None and message.uuid:
                    self.prompt_uuid = message.uuid
                continue
            if isinstance(message, RateLimitEvent):
                rate_limit = message.rate_limit_info
            elif isinstance(message, SystemMessage) and message.subtype == "api_retry":
                delay = message.data.get("retry_delay_ms")
                # The CLI's wait is the upstream's Retry-After plus a few milliseconds of its own.
                retry_after = max(1, int(delay / 1000)) if isinstance(delay, int | float) else retry_after
            elif isinstance(message, StreamEvent) and message.parent_tool_use_id is None:
                answering = answering or message.event.get("type") not in (None, "ping")
                self._read_event(message.event)
            elif isinstance(message, AssistantMessage) and message.parent_tool_use_id is None:
                answering = answering or message.model != "<synthetic>"
                self._blocks += _held_blocks(message)
            if isinstance(message, ResultMessage):
                yield self._finish(message, rate_limit, retry_after)
                return
            yield message

    def _read_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self._blocks = []
            self._message_usage = dict(event.get("message", {}).get("usage") or {})
            self._add_usage(self._message_usage)
        elif kind == "content_block_start":
            block = event.get("content_block", {})
            if block.get("type") == "tool_use" and client_tool_name(block.get("name", "")):
                self.calls = (*self.calls, block.get("id", ""))
        elif kind == "message_delta":
            # The output count in a delta is the message's running total, not an increment.
            usage = event.get("usage") or {}
            before = dict(self._message_usage)
            self._message_usage.update(usage)
            self._add_usage({name: self._message_usage.get(name, 0) - before.get(name, 0) for name in usage})
            stop_reason = event.get("delta", {}).get("stop_reason")
            if stop_reason == "tool_use" and self.calls:
                self.state = "awaiting_tools"
                self.reply = ClaudeTurn("assistant", tuple(self._blocks))
            elif stop_reason:
                self.calls = ()

    def _add_usage(self, usage: Mapping[str, Any]) -> None:
        for name in USAGE_FIELDS:
            value = usage.get(name)
            if isinstance(value, int):
                self._usage[name] = self._usage.get(name, 0) + value

    def _finish(
        self, result: ResultMessage, rate_limit: RateLimitInfo | None, retry_after: float | None
    ) -> ResultMessage:
        """The result, charged for this request alone; records how the turn ended."""
        if result.is_error:
            self.state = "failed"
            raise error_from_result(result, rate_limit, time.time(), retry_after)
        self.state = "answered"
        self.calls = ()
        if result.structured_output is None and self._blocks:
            self.reply = ClaudeTurn("assistant", tuple(self._blocks))
        usage = dict(result.usage or {})
        for name, value in self._reported.items():
            if isinstance(usage.get(name), int):
                usage[name] = max(0, usage[name] - value)
        total = result.total_cost_usd
        cost = None
        if total is not None:
            # Claude Code counts the cost of the whole session the process has lived.
            seen = self._process.cost_seen
            cost = total - seen if total >= seen else total
            self._process.cost_seen = total
        return dataclasses.replace(result, usage=usage, total_cost_usd=cost)


def _held_blocks(message: AssistantMessage) -> list[ContentBlock]:
    """What of an assistant message the client is shown, and so sends back: text and its own calls."""
    blocks: list[ContentBlock] = []
    for block in message.content:
        if isinstance(block, TextBlock) and block.text:
            blocks.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolUseBlock) and client_tool_name(block.name):
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    return blocks


def _result_ids(message: UserMessage) -> set[str]:
    content = message.content if isinstance(message.content, list) else []
    return {getattr(block, "tool_use_id", "") for block in content}
