"""Claude's answer as OpenAI Responses objects: a whole Response, or its `response.*` SSE events; pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from claude_code_api.answer.events import (
    Answer,
    ClaudeUsage,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
)
from claude_code_api.answer.request import LENGTH_STOP_REASONS
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest
from claude_code_api.apis.openai_responses.translate import namespaced_functions
from claude_code_api.errors import GatewayError
from claude_code_api.sse import encode_named_event


def response_echo(request: ResponsesRequest, *, response_id: str, created_at: int) -> dict[str, Any]:
    """The fields of a Response object that restate the request."""
    choice = request.tool_choice
    text_format: Any = {"type": "text"}
    if request.text is not None and request.text.format is not None:
        text_format = request.text.format.model_dump(by_alias=True, exclude_none=True)
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": {"effort": request.reasoning.effort if request.reasoning else None, "summary": None},
        "service_tier": "default",
        "store": False,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": text_format, "verbosity": request.text.verbosity if request.text else None},
        "tool_choice": choice.model_dump() if isinstance(choice, BaseModel) else (choice or "auto"),
        "tools": [tool.model_dump(exclude_none=True) for tool in request.tools or ()],
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": request.user,
        "metadata": request.metadata or {},
    }


def responses_usage(usage: ClaudeUsage) -> dict[str, Any]:
    """Claude's token counts in the Responses API's shape (input tokens include cached ones)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
    }


def response_status(
    stop_reason: str | None,
) -> tuple[Literal["completed", "incomplete"], dict[str, str] | None]:
    """The Response's status and incomplete details for Claude's stop reason."""
    if stop_reason in LENGTH_STOP_REASONS:
        return "incomplete", {"reason": "max_output_tokens"}
    if stop_reason == "refusal":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """An assistant message output item with one output_text part."""
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [_output_text(text)],
    }


def function_call_item(
    item_id: str, call: ToolCallRecord, status: str, echo: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A function_call output item; its call_id is Claude's tool_use id. A call of a namespace tool's
    function (per the echoed `tools`) carries its `namespace` and its own name."""
    named: dict[str, Any] = {"name": call.name}
    namespaced = namespaced_functions((echo or {}).get("tools") or [])
    if call.name in namespaced:
        named = {"namespace": namespaced[call.name][0], "name": namespaced[call.name][1]}
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.call_id,
        **named,
        "arguments": call.arguments or "{}",
        "status": status,
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(
    echo: dict[str, Any],
    *,
    model: str,
    text: str,
    tool_calls: list[ToolCallRecord],
    stop_reason: str | None,
    usage: ClaudeUsage,
) -> dict[str, Any]:
    """A whole, finished Response object."""
    status, incomplete = response_status(stop_reason)
    key = _item_key(echo["id"])
    output = [message_item(f"msg_{key}_0", text, status)] if text else []
    # Items are numbered by their place in the output, as the stream numbers them.
    first = len(output)
    output += [
        function_call_item(f"fc_{key}_{first + n}", call, status, echo) for n, call in enumerate(tool_calls)
    ]
    return echo | {
        "status": status,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "usage": responses_usage(usage),
    }


def _item_key(response_id: str) -> str:
    return response_id.removeprefix("resp_")


# Error codes a Response's `error` may carry (openai's ResponseError.code).
def _failure_code(error: GatewayError) -> str:
    if error.status == 429:
        return "rate_limit_exceeded"
    if error.status == 400:
        return "invalid_prompt"
    return "server_error"


@dataclass
class ResponseStreamEncoder:
    """The `response.*` SSE events of one response: created, in_progress, per output item its added,
    deltas and done events, then completed (or incomplete, or failed), each with a sequence number."""

    echo: dict[str, Any]
    _sequence: int = 0
    _model: str = ""
    _output: list[dict[str, Any]] = field(default_factory=list)
    _open: int | None = None
    _calls: dict[int, int] = field(default_factory=dict)

    def whole(self, answer: Answer) -> dict[str, Any]:
        """The answer as one finished Response, for a request that did not ask for a stream."""
        return response_object(
            self.echo,
            model=answer.end.run.model,
            text=answer.text,
            tool_calls=answer.tool_calls,
            stop_reason=answer.end.stop_reason,
            usage=answer.end.run.usage,
        )

    def start(self, model: str) -> bytes:
        self._model = model
        response = self._response("in_progress")
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def text(self, text: str) -> bytes:
        opening = b""
        if self._open is None or self._output[self._open]["type"] != "message":
            opening = self._close_open("completed")
            item = message_item(f"msg_{_item_key(self.echo['id'])}_{len(self._output)}", "", "in_progress")
            item["content"] = []
            opening += self._add(item)
            opening += self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self._open,
                content_index=0,
                part=_output_text(""),
            )
            item["content"] = [_output_text("")]
        assert self._open is not None
        item = self._output[self._open]
        item["content"][0]["text"] += text
        delta = self._event(
            "response.output_text.delta",
            item_id=item["id"],
            output_index=self._open,
            content_index=0,
            delta=text,
            logprobs=[],
        )
        return opening + delta

    def tool_call_start(self, event: ToolCallStarted) -> bytes:
        closing = self._close_open("completed")
        record = ToolCallRecord(event.call_id, event.name)
        item_id = f"fc_{_item_key(self.echo['id'])}_{len(self._output)}"
        item = function_call_item(item_id, record, "in_progress", self.echo) | {"arguments": ""}
        opening = self._add(item)
        assert self._open is not None
        self._calls[event.index] = self._open
        return closing + opening

    def tool_call_arguments(self, event: ToolCallArguments) -> bytes:
        index = self._calls[event.index]
        item = self._output[index]
        item["arguments"] += event.json
        return self._event(
            "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=event.json
        )

    def finish(self, stop_reason: str | None, stop_sequence: str | None, usage: ClaudeUsage) -> bytes:
        status, incomplete = response_status(stop_reason)
        closing = self._close_open(status)
        response = self._response(status) | {
            "incomplete_details": incomplete,
            "usage": responses_usage(usage),
        }
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return closing + self._event(kind, response=response)

    def error(self, error: GatewayError) -> bytes:
        response = self._response("failed") | {
            "error": {"code": _failure_code(error), "message": error.message}
        }
        return self._event("response.failed", response=response)

    def _response(self, status: str) -> dict[str, Any]:
        return self.echo | {"status": status, "model": self._model, "output": self._output}

    def _add(self, item: dict[str, Any]) -> bytes:
        self._output.append(item)
        self._open = len(self._output) - 1
        return self._event("response.output_item.added", output_index=self._open, item=item)

    def _close_open(self, status: str) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        item = self._output[index]
        item["status"] = status
        events = b""
        if item["type"] == "message":
            part = item["content"][0]
            events += self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            events += self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        else:
            item["arguments"] = item["arguments"] or "{}"
            events += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        return events + self._event("response.output_item.done", output_index=index, item=item)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        # Serialised at once, so later changes to the items do not reach events already made.
        return encode_named_event(kind, payload)
