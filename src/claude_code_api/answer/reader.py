"""Claude Code's messages as answer events: the stream reader, and the scanner that cuts text at stop
sequences; pure (the SDK's message types are only read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from claude_agent_sdk import (
    AssistantMessage,
    Message,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolUseBlock,
)

from claude_code_api.answer.events import (
    ClaudeUsage,
    ReaderEvent,
    TextDelta,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
    TurnFinished,
)
from claude_code_api.answer.request import LENGTH_STOP_REASONS
from claude_code_api.answer.tools import client_tool_name

# Claude Code's tool that carries a structured (JSON) answer.
STRUCTURED_OUTPUT_TOOL = "StructuredOutput"
# The model name of the assistant messages Claude Code writes itself (errors, interrupted turns).
SYNTHETIC_MODEL = "<synthetic>"


@dataclass
class _Attempt:
    """What one upstream message has said so far."""

    text: str = ""
    calls: list[ToolCallRecord] = field(default_factory=list)


@dataclass
class ClaudeStreamReader:
    """Turns Claude Code's messages into answer text, tool calls and one final event.

    Text and tool calls come from the partial stream events as Claude writes them. When an upstream
    stream breaks, the CLI asks again and the new attempt repeats what the broken one already said;
    only what goes beyond what the client has been sent is passed on. An answer that arrives without
    streaming comes whole in an assistant message. With `structured` set, the answer is the JSON Claude
    hands to Claude Code's StructuredOutput tool, and prose around it is left out.
    """

    structured: bool = False
    model: str | None = None
    stop_reason: str | None = None
    text: str = ""
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    _committed: _Attempt = field(default_factory=_Attempt, repr=False)
    _attempt: _Attempt = field(default_factory=_Attempt, repr=False)
    _blocks: dict[int, int | str] = field(default_factory=dict, repr=False)
    _streamed_ids: set[str] = field(default_factory=set, repr=False)
    _usage: dict[str, Any] = field(default_factory=dict, repr=False)

    def read(self, message: Message) -> list[ReaderEvent]:
        """Returns the events one SDK message adds."""
        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id is not None:
                return []
            return self._read_stream_event(message.event)
        if isinstance(message, AssistantMessage) and message.parent_tool_use_id is None:
            if message.message_id in self._streamed_ids or message.model == SYNTHETIC_MODEL:
                # A synthetic message is the CLI's own prose about a failure; it names the upstream.
                return []
            return self._read_unstreamed(message)
        if isinstance(message, SystemMessage) and message.subtype == "init":
            self.model = message.data.get("model") or self.model
        elif isinstance(message, ResultMessage):
            stop_reason = message.stop_reason or self.stop_reason
            if self.tool_calls:
                stop_reason = "tool_use"
            elif self.structured and stop_reason == "tool_use":
                # The structured answer travels as a call of Claude Code's own tool: it is the answer.
                stop_reason = "end_turn"
            return [
                TurnFinished(
                    stop_reason=stop_reason,
                    usage=ClaudeUsage.from_claude(message.usage),
                    cost_usd=message.total_cost_usd,
                    model=self.model,
                    structured_output=message.structured_output,
                )
            ]
        return []

    def _read_stream_event(self, event: dict[str, Any]) -> list[ReaderEvent]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message", {})
            self._usage = dict(message.get("usage") or {})
            self._attempt, self._blocks = _Attempt(), {}
            self._streamed_ids.add(message.get("id", ""))
            self.model = message.get("model") or self.model
        elif kind == "content_block_start":
            return self._start_block(event.get("index", 0), event.get("content_block", {}))
        elif kind == "content_block_delta":
            return self._read_delta(self._blocks.get(event.get("index", 0)), event.get("delta", {}))
        elif kind == "message_delta":
            self._usage.update(event.get("usage") or {})
            stop_reason = event.get("delta", {}).get("stop_reason")
            if stop_reason:
                # Only a message that reached its stop reason is final; a broken one is asked again.
                self.stop_reason = stop_reason
                self._commit()
                return self._end_early(stop_reason, self._usage)
        return []

    def _end_early(self, stop_reason: str | None, usage: dict[str, Any] | None) -> list[ReaderEvent]:
        """Ends the answer at the stop of an upstream message, where Claude Code would go on.

        At the client's function calls, the answer is the calls: Claude Code waits inside them for
        the results the client's next request brings. Where Claude ran out of tokens, Claude Code
        would ask the model to go on (up to three more billed requests); for a client that set a
        limit, the answer ends here. The cost of the run is unknown at this point.
        """
        if self.structured:
            return []
        if stop_reason == "tool_use" and self.tool_calls:
            return [TurnFinished(stop_reason, ClaudeUsage.from_claude(usage), None, self.model)]
        if stop_reason in LENGTH_STOP_REASONS and not self.tool_calls:
            return [TurnFinished(stop_reason, ClaudeUsage.from_claude(usage), None, self.model)]
        return []

    def _start_block(self, index: int, block: dict[str, Any]) -> list[ReaderEvent]:
        kind = block.get("type")
        name = block.get("name", "")
        if kind == "text" and not self.structured:
            self._blocks[index] = "text"
        elif kind == "tool_use" and name == STRUCTURED_OUTPUT_TOOL and self.structured:
            self._blocks[index] = "json"
        elif kind == "tool_use" and (client_name := client_tool_name(name)) is not None:
            self._attempt.calls.append(ToolCallRecord(block.get("id", ""), client_name))
            position = len(self._committed.calls) + len(self._attempt.calls) - 1
            self._blocks[index] = position
            return self._emit_call(position)
        return []

    def _read_delta(self, block: int | str | None, delta: dict[str, Any]) -> list[ReaderEvent]:
        kind = delta.get("type")
        if block == "text" and kind == "text_delta":
            self._attempt.text += delta.get("text", "")
            return self._emit_text()
        if kind != "input_json_delta":
            return []
        piece = delta.get("partial_json", "")
        if block == "json":
            self._attempt.text += piece
            return self._emit_text()
        if isinstance(block, int):
            self._attempt.calls[block - len(self._committed.calls)].arguments += piece
            return self._emit_call(block)
        return []

    def _read_unstreamed(self, message: AssistantMessage) -> list[ReaderEvent]:
        """An assistant message whose stream was never seen: the non-streaming retry."""
        self._attempt = _Attempt()
        events: list[ReaderEvent] = []
        for block in message.content:
            if isinstance(block, TextBlock) and not self.structured:
                self._attempt.text += block.text
                events += self._emit_text()
            elif isinstance(block, ToolUseBlock):
                arguments = orjson.dumps(block.input).decode()
                if block.name == STRUCTURED_OUTPUT_TOOL and self.structured:
                    self._attempt.text += arguments
                    events += self._emit_text()
                elif (name := client_tool_name(block.name)) is not None:
                    self._attempt.calls.append(ToolCallRecord(block.id, name, arguments))
                    events += self._emit_call(len(self._committed.calls) + len(self._attempt.calls) - 1)
        self._commit()
        return events + self._end_early(message.stop_reason, message.usage)

    def _commit(self) -> None:
        self._committed.text += self._attempt.text
        self._committed.calls += self._attempt.calls
        self._attempt = _Attempt()

    def _emit_text(self) -> list[ReaderEvent]:
        said = self._committed.text + self._attempt.text
        if len(said) <= len(self.text):
            return []
        missing = said[len(self.text) :]
        self.text += missing
        return [TextDelta(missing)]

    def _emit_call(self, position: int) -> list[ReaderEvent]:
        call = (self._committed.calls + self._attempt.calls)[position]
        events: list[ReaderEvent] = []
        if position == len(self.tool_calls):
            self.tool_calls.append(ToolCallRecord(call.call_id, call.name))
            events.append(ToolCallStarted(position, call.call_id, call.name))
        sent = self.tool_calls[position]
        if len(call.arguments) > len(sent.arguments):
            events.append(ToolCallArguments(position, call.arguments[len(sent.arguments) :]))
            sent.arguments = call.arguments
        return events


class StopScanner:
    """Cuts the answer at the first of OpenAI's `stop` sequences, which is itself left out.

    Text that might be the start of a stop sequence is held back until the next delta decides it.
    """

    def __init__(self, stop_sequences: tuple[str, ...]) -> None:
        self._stops = stop_sequences
        self._hold = max((len(s) for s in stop_sequences), default=1) - 1
        self._pending = ""
        self.stopped = False
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        """Returns the text that can be released now."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        self._pending += text
        found = [(i, s) for s in self._stops if (i := self._pending.find(s)) >= 0]
        if found:
            cut, self.matched = min(found, key=lambda position: position[0])
            self.stopped = True
            released, self._pending = self._pending[:cut], ""
            return released
        # Short pending text is all held: a negative end would release the start of a stop sequence.
        released = self._pending[: max(0, len(self._pending) - self._hold)]
        self._pending = self._pending[len(released) :]
        return released

    def flush(self) -> str:
        """Returns what was held back once the answer is complete."""
        released, self._pending = ("" if self.stopped else self._pending), ""
        return released
