"""Claude's answer as Anthropic's Messages API objects: a whole Message, its SSE events, and errors
in Anthropic's shape; pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from claude_code_api.answer.blocks import json_arguments
from claude_code_api.answer.events import (
    Answer,
    ClaudeUsage,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
)
from claude_code_api.errors import GatewayError
from claude_code_api.sse import encode_named_event

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]
STOP_REASONS: frozenset[str] = frozenset(StopReason.__args__)  # type: ignore[attr-defined]


def anthropic_stop_reason(stop_reason: str | None) -> str:
    """Claude's stop reason as the API reports it; end_turn when Claude Code gave none."""
    return stop_reason if stop_reason in STOP_REASONS else "end_turn"


def anthropic_usage(usage: ClaudeUsage) -> dict[str, int]:
    """Token counts in the Messages API's shape: input tokens exclude cached ones, as upstream."""
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


def tool_use_block(call: ToolCallRecord) -> dict[str, Any]:
    """A finished tool call as a `tool_use` block, its name without the client prefix."""
    # A call cut short (max_tokens) has incomplete JSON; its stop reason says so.
    return {
        "type": "tool_use",
        "id": call.call_id,
        "name": call.name,
        "input": json_arguments(call.arguments) or {},
    }


def anthropic_message(
    *,
    message_id: str,
    model: str,
    text: str,
    tool_calls: list[ToolCallRecord],
    stop_reason: str | None,
    stop_sequence: str | None,
    usage: ClaudeUsage,
) -> dict[str, Any]:
    """A whole Message object."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [tool_use_block(call) for call in tool_calls]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(stop_reason),
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(usage),
    }


@dataclass
class MessageStreamEncoder:
    """Anthropic's SSE sequence for one message: message_start, a content_block_start / _delta /
    _stop run per text or tool_use block, message_delta with the stop reason and usage, message_stop.

    Input tokens are known only at the end, so message_start counts zero and message_delta carries
    every count; Anthropic's clients take message_delta's counts as the totals.
    """

    message_id: str
    _blocks: int = 0
    _open: Literal["text", "tool_use"] | None = None
    _tool_blocks: dict[int, int] = field(default_factory=dict)

    def whole(self, answer: Answer) -> dict[str, Any]:
        """The answer as one Message, for a request that did not ask for a stream."""
        return anthropic_message(
            message_id=self.message_id,
            model=answer.end.run.model,
            text=answer.text,
            tool_calls=answer.tool_calls,
            stop_reason=answer.end.stop_reason,
            stop_sequence=answer.end.stop_sequence,
            usage=answer.end.run.usage,
        )

    def start(self, model: str) -> bytes:
        message = anthropic_message(
            message_id=self.message_id,
            model=model,
            text="",
            tool_calls=[],
            stop_reason=None,
            stop_sequence=None,
            usage=ClaudeUsage(),
        )
        message["stop_reason"] = None
        return _event("message_start", {"type": "message_start", "message": message})

    def text(self, text: str) -> bytes:
        opening = b""
        if self._open != "text":
            opening = self._open_block("text", {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return opening + self._delta(self._blocks - 1, delta)

    def tool_call_start(self, event: ToolCallStarted) -> bytes:
        block = {"type": "tool_use", "id": event.call_id, "name": event.name, "input": {}}
        opening = self._open_block("tool_use", block)
        self._tool_blocks[event.index] = self._blocks - 1
        return opening

    def tool_call_arguments(self, event: ToolCallArguments) -> bytes:
        delta = {"type": "input_json_delta", "partial_json": event.json}
        return self._delta(self._tool_blocks[event.index], delta)

    def finish(self, stop_reason: str | None, stop_sequence: str | None, usage: ClaudeUsage) -> bytes:
        delta = {"stop_reason": anthropic_stop_reason(stop_reason), "stop_sequence": stop_sequence}
        return (
            self._close_block()
            + _event(
                "message_delta", {"type": "message_delta", "delta": delta, "usage": anthropic_usage(usage)}
            )
            + _event("message_stop", {"type": "message_stop"})
        )

    def error(self, error: GatewayError) -> bytes:
        return _event("error", anthropic_error(error))

    def _open_block(self, kind: Literal["text", "tool_use"], block: dict[str, Any]) -> bytes:
        closing = self._close_block()
        self._open = kind
        self._blocks += 1
        start = {"type": "content_block_start", "index": self._blocks - 1, "content_block": block}
        return closing + _event("content_block_start", start)

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._blocks - 1})

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return encode_named_event(name, payload)


# --- errors --------------------------------------------------------------------------------------

# https://docs.anthropic.com/en/api/errors
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """The Anthropic error type for an HTTP status."""
    return ERROR_TYPES.get(status, "api_error")


def anthropic_error(error: GatewayError) -> dict[str, Any]:
    """An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`."""
    return anthropic_error_body(error.status, error.message)


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body for an HTTP status and a message."""
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}
