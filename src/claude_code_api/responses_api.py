"""OpenAI's Responses API over Claude Code: a request (responses_schemas.py) to a Claude request, and
the answer back as a Response object or as the `response.*` SSE events; pure.

Nothing is stored: `store: true`, `previous_response_id`, `conversation` and item references are
refused with a 400 that says so, and a client sends the whole conversation as input items each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import GatewayError, InvalidRequestError, UnsupportedParameterError
from claude_code_api.responses_schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    InputImage,
    InputText,
    MessageItem,
    OutputText,
    ReasoningConfig,
    Refusal,
    ResponsesRequest,
    TextConfig,
    TextFormatJsonObject,
    TextFormatText,
    Unsupported,
)
from claude_code_api.sse import encode_named_event
from claude_code_api.translate import (
    CLIENT_TOOL_PREFIX,
    ClaudeRequest,
    ClaudeTurn,
    ClaudeUsage,
    ClientTool,
    ContentBlock,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
    claude_conversation,
    image_block_from_url,
    tool_input_schema,
    tool_use_instruction,
)


def translate_responses_request(
    request: ResponsesRequest, model: ModelChoice, *, fetch_image_urls: bool = False
) -> ClaudeRequest:
    """Turns a validated Responses request into a Claude request; refuses what Claude cannot honour."""
    refuse_unsupported(request)
    system_parts = [request.instructions or ""]
    turns: list[ClaudeTurn] = []
    if isinstance(request.input, str):
        turns.append(ClaudeTurn("user", (_text(request.input, "input"),)))
    else:
        for index, item in enumerate(request.input):
            where = f"input[{index}]"
            if isinstance(item, MessageItem) and item.role in ("system", "developer"):
                system_parts.append(_instructions(item, where))
            elif isinstance(item, MessageItem):
                turns.append(ClaudeTurn(item.role, _message_content(item, where, fetch_image_urls)))  # type: ignore[arg-type]
            elif isinstance(item, FunctionCallItem):
                turns.append(ClaudeTurn("assistant", (_tool_use(item, where),)))
            elif isinstance(item, FunctionCallOutputItem):
                turns.append(ClaudeTurn("user", (_tool_result(item, where, fetch_image_urls),)))
            elif isinstance(item, Unsupported):
                raise _unsupported_item(item, where)
    history, prompt = claude_conversation(turns, param="input")
    tools = client_tools(request)
    system_parts.append(_tool_choice_instruction(request, tools))
    return ClaudeRequest(
        model=model.claude_model,
        system_prompt="\n\n".join(part for part in system_parts if part) or None,
        history=history,
        prompt=prompt,
        max_output_tokens=request.max_output_tokens,
        effort=_effort(request.reasoning),
        client_tools=tools,
        output_schema=_output_schema(request.text),
    )


def refuse_unsupported(request: ResponsesRequest) -> None:
    """Raises a 400 naming the first parameter Claude Code cannot honour."""
    stored = "this gateway stores no responses; send the whole conversation as input items."
    reasoning = request.reasoning
    refusals: list[tuple[str, bool, str]] = [
        ("store", request.store is True, stored + " Leave 'store' unset or false."),
        ("previous_response_id", request.previous_response_id is not None, stored),
        ("conversation", request.conversation is not None, stored),
        ("background", request.background is True, "background responses need stored responses."),
        ("prompt", request.prompt is not None, "stored prompt templates are not available."),
        (
            "include",
            bool(request.include),
            "no extra output data (logprobs, encrypted reasoning) is offered.",
        ),
        ("top_logprobs", bool(request.top_logprobs), "Claude does not return log probabilities."),
        (
            "truncation",
            request.truncation == "auto",
            "Claude Code does not drop input items to fit the context; use 'disabled'.",
        ),
        (
            "reasoning.summary",
            reasoning is not None and (reasoning.summary or reasoning.generate_summary) not in (None, "auto"),
            "this gateway returns no reasoning summaries; leave 'summary' unset or 'auto'.",
        ),
        ("context_management", request.context_management is not None, "Claude Code manages its context."),
        ("moderation", request.moderation is not None, "moderation is not available."),
        ("image", request.image is not None, "image generation options are not available."),
        ("access_programs", request.access_programs is not None, "access programs are not available."),
        ("background_options", request.background_options is not None, "background responses need storage."),
        ("prompt_cache_options", request.prompt_cache_options is not None, "Claude Code manages caching."),
    ]
    for param, refused, reason in refusals:
        if refused:
            raise UnsupportedParameterError(param, reason)


def _unsupported_item(item: Unsupported, where: str) -> UnsupportedParameterError:
    if item.type == "item_reference":
        return UnsupportedParameterError(
            where, "item references need stored responses; send the item itself."
        )
    return UnsupportedParameterError(where, f"input items of type '{item.type}' are not supported.")


def _instructions(item: MessageItem, where: str) -> str:
    if isinstance(item.content, str):
        return item.content
    texts = []
    for position, part in enumerate(item.content):
        if not isinstance(part, InputText):
            raise UnsupportedParameterError(
                f"{where}.content[{position}]", f"{item.role} messages take text only."
            )
        texts.append(part.text)
    return "\n".join(texts)


def _message_content(item: MessageItem, where: str, fetch: bool) -> tuple[ContentBlock, ...]:
    if isinstance(item.content, str):
        return (_text(item.content, f"{where}.content"),)
    blocks = [_part(part, f"{where}.content[{n}]", item.role, fetch) for n, part in enumerate(item.content)]
    if not blocks:
        raise InvalidRequestError(f"{where}.content must not be empty.", param=f"{where}.content")
    return tuple(blocks)


def _part(part: Any, where: str, role: str, fetch: bool) -> ContentBlock:
    user_kinds, assistant_kinds = (InputText, InputImage), (OutputText, Refusal, InputText)
    if isinstance(part, Unsupported):
        raise UnsupportedParameterError(where, f"content parts of type '{part.type}'.")
    if not isinstance(part, user_kinds if role == "user" else assistant_kinds):
        raise InvalidRequestError(
            f"{where}: a '{part.type}' part cannot appear in a {role} message.", param=where
        )
    if isinstance(part, InputImage):
        if part.image_url is None:
            raise UnsupportedParameterError(where, "images by file_id need the Files API; send image_url.")
        return image_block_from_url(part.image_url, where, fetch_allowed=fetch)
    if isinstance(part, Refusal):
        return _text(part.refusal, where)
    return _text(part.text, where)


def _tool_use(item: FunctionCallItem, where: str) -> ContentBlock:
    try:
        arguments = orjson.loads(item.arguments or "{}")
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError(
            f"{where}.arguments must be a JSON object (as a string).", param=f"{where}.arguments"
        )
    return {
        "type": "tool_use",
        "id": item.call_id,
        "name": CLIENT_TOOL_PREFIX + item.name,
        "input": arguments,
    }


def _tool_result(item: FunctionCallOutputItem, where: str, fetch: bool) -> ContentBlock:
    output = item.output
    content: str | list[ContentBlock]
    if isinstance(output, str):
        content = output
    else:
        content = [_part(part, f"{where}.output[{n}]", "user", fetch) for n, part in enumerate(output)]
    return {"type": "tool_result", "tool_use_id": item.call_id, "content": content}


def _text(text: str, where: str) -> ContentBlock:
    if not text.strip():
        # Anthropic refuses empty text blocks; say so here rather than as an upstream 400.
        raise InvalidRequestError(f"{where} must not be empty.", param=where)
    return {"type": "text", "text": text}


def client_tools(request: ResponsesRequest) -> tuple[ClientTool, ...]:
    """The functions Claude may call: none when `tool_choice` is "none"."""
    if not request.tools or request.tool_choice == "none":
        return ()
    tools: list[ClientTool] = []
    for index, tool in enumerate(request.tools):
        if isinstance(tool, Unsupported):
            raise UnsupportedParameterError(
                f"tools[{index}]", f"tools of type '{tool.type}' are not available; only function tools."
            )
        tools.append(ClientTool(tool.name, tool.description or tool.name, tool_input_schema(tool.parameters)))
    if len({tool.name for tool in tools}) != len(tools):
        raise InvalidRequestError("Tool names must be unique.", param="tools")
    return tuple(tools)


def _tool_choice_instruction(request: ResponsesRequest, tools: tuple[ClientTool, ...]) -> str:
    choice = request.tool_choice
    if isinstance(choice, Unsupported):
        raise UnsupportedParameterError(
            "tool_choice", f"'{choice.type}' is not available; use none, auto, required or a function."
        )
    return tool_use_instruction(
        tools,
        named=choice.name if isinstance(choice, FunctionChoice) else None,
        required=choice == "required",
        one_call=request.parallel_tool_calls is False,
    )


def _effort(reasoning: ReasoningConfig | None) -> str | None:
    # Claude Code's effort levels start at low; OpenAI's lowest map to it.
    if reasoning is None or reasoning.effort is None:
        return None
    return {"none": "low", "minimal": "low"}.get(reasoning.effort, reasoning.effort)


def _output_schema(text: TextConfig | None) -> dict[str, Any] | None:
    if text is None or text.format is None or isinstance(text.format, TextFormatText):
        return None
    if isinstance(text.format, TextFormatJsonObject):
        return {"type": "object"}
    return text.format.schema_


# --- the answer ----------------------------------------------------------------------------------


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
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
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


def function_call_item(item_id: str, call: ToolCallRecord, status: str) -> dict[str, Any]:
    """A function_call output item; its call_id is Claude's tool_use id."""
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.call_id,
        "name": call.name,
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
    output += [function_call_item(f"fc_{key}_{n + 1}", call, status) for n, call in enumerate(tool_calls)]
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
        item = function_call_item(item_id, record, "in_progress") | {"arguments": ""}
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
