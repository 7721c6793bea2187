"""Anthropic's Messages API over Claude Code: a request (anthropic_schemas.py) to a Claude request, and
the answer back as a Message, as Anthropic's SSE events or as Anthropic's error; pure.

Client tools reach Claude as `mcp__client__<name>` and come back without the prefix. What Claude Code
cannot honour is refused with a 400 naming the parameter (see `refuse_unsupported`); parameters that
only tune sampling are accepted and left to Claude Code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from claude_code_api.anthropic_schemas import (
    AssistantMessage,
    Base64ImageSource,
    ImageBlock,
    MessagesRequest,
    OutputConfig,
    ServerBlock,
    ServerTool,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolChoice,
    ToolChoiceAny,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultBlock,
    ToolUseBlock,
    URLImageSource,
    UserMessage,
)
from claude_code_api.catalog import CATALOG_CREATED, OPENAI_ALIASES, ModelChoice
from claude_code_api.errors import GatewayError, InvalidRequestError, UnsupportedParameterError
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
    image_block_from_base64,
    image_block_from_url,
    tool_use_instruction,
)


def translate_messages_request(
    request: MessagesRequest, model: ModelChoice, *, fetch_image_urls: bool = False
) -> ClaudeRequest:
    """Turns a validated Messages request into a Claude request; refuses what Claude cannot honour."""
    refuse_unsupported(request)
    system_parts = [_system_text(request.system)]
    turns: list[ClaudeTurn] = []
    for index, message in enumerate(request.messages):
        if isinstance(message, SystemMessage):
            system_parts.append(_system_text(message.content))
            continue
        content = _content(message, index, fetch_image_urls)
        if content:
            turns.append(ClaudeTurn(message.role, content))
    history, prompt = claude_conversation(turns, param="messages")
    tools = client_tools(request)
    system_parts.append(_tool_choice_instruction(request.tool_choice, tools))
    output_config = request.output_config or OutputConfig()
    return ClaudeRequest(
        model=model.claude_model,
        system_prompt="\n\n".join(part for part in system_parts if part) or None,
        history=history,
        prompt=prompt,
        max_output_tokens=request.max_tokens,
        stop_sequences=tuple(s for s in request.stop_sequences or () if s),
        effort=output_config.effort,
        client_tools=tools,
        output_schema=output_config.format.schema_ if output_config.format else None,
    )


def refuse_unsupported(request: MessagesRequest) -> None:
    """Raises a 400 naming the first parameter Claude Code cannot honour."""
    thinking = request.thinking
    if thinking is None:
        return
    if thinking.type != "adaptive":
        raise UnsupportedParameterError(
            "thinking",
            f"'{thinking.type}' cannot be set through this gateway: Claude Code decides on thinking "
            'itself (adaptively). Leave \'thinking\' out, or send {"type": "adaptive"}.',
        )
    if thinking.display == "summarized":
        raise UnsupportedParameterError(
            "thinking.display", "this gateway does not return thinking blocks; leave 'display' out."
        )


def _system_text(system: str | list[TextBlock] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    return "\n\n".join(block.text for block in system)


def _content(message: UserMessage | AssistantMessage, index: int, fetch: bool) -> tuple[ContentBlock, ...]:
    if isinstance(message.content, str):
        return (_text(message.content, f"messages[{index}].content"),)
    blocks: list[ContentBlock] = []
    for position, block in enumerate(message.content):
        where = f"messages[{index}].content[{position}]"
        if isinstance(block, ThinkingBlock):
            continue
        if isinstance(block, ServerBlock):
            raise UnsupportedParameterError(where, f"content blocks of type '{block.type}'.")
        allowed = (ToolUseBlock,) if message.role == "assistant" else (ImageBlock, ToolResultBlock)
        if not isinstance(block, (TextBlock, *allowed)):
            raise InvalidRequestError(
                f"{where}: a '{block.type}' block cannot appear in a {message.role} message.", param=where
            )
        blocks.append(_block(block, where, fetch))
    if not blocks and message.role == "user":
        where = f"messages[{index}].content"
        raise InvalidRequestError(f"{where} must not be empty.", param=where)
    return tuple(blocks)


def _block(
    block: TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, where: str, fetch: bool
) -> ContentBlock:
    if isinstance(block, TextBlock):
        if block.citations:
            raise UnsupportedParameterError(f"{where}.citations", "citations are not supported.")
        return _text(block.text, where)
    if isinstance(block, ImageBlock):
        return _image(block, where, fetch)
    if isinstance(block, ToolUseBlock):
        return {
            "type": "tool_use",
            "id": block.id,
            "name": CLIENT_TOOL_PREFIX + block.name,
            "input": block.input,
        }
    result: ContentBlock = {"type": "tool_result", "tool_use_id": block.tool_use_id}
    if isinstance(block.content, str):
        result["content"] = block.content
    elif block.content:
        result["content"] = [
            _text(part.text, f"{where}.content[{n}]")
            if isinstance(part, TextBlock)
            else _image(part, f"{where}.content[{n}]", fetch)
            for n, part in enumerate(block.content)
        ]
    if block.is_error:
        result["is_error"] = True
    return result


def _text(text: str, where: str) -> ContentBlock:
    if not text.strip():
        # Anthropic refuses empty text blocks; say so here rather than as an upstream 400.
        raise InvalidRequestError(f"{where}: text content must be non-empty.", param=where)
    return {"type": "text", "text": text}


def _image(block: ImageBlock, where: str, fetch: bool) -> ContentBlock:
    source = block.source
    if isinstance(source, Base64ImageSource):
        return image_block_from_base64(source.media_type, source.data, f"{where}.source")
    if isinstance(source, URLImageSource):
        if not source.url[:8].lower().startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"{where}.source.url must be an http(s) URL.", param=f"{where}.source.url"
            )
        return image_block_from_url(source.url, f"{where}.source", fetch_allowed=fetch)
    raise UnsupportedParameterError(
        f"{where}.source", "file sources need the Files API, which is not offered."
    )


def client_tools(request: MessagesRequest) -> tuple[ClientTool, ...]:
    """The client's tools Claude may call: none when `tool_choice` is none."""
    if not request.tools or isinstance(request.tool_choice, ToolChoiceNone):
        return ()
    tools: list[ClientTool] = []
    for index, tool in enumerate(request.tools):
        if isinstance(tool, ServerTool):
            raise UnsupportedParameterError(
                f"tools[{index}]",
                f"server tools ('{tool.type}') are not available through this gateway; "
                "only custom tools with name, description and input_schema.",
            )
        tools.append(ClientTool(tool.name, tool.description or tool.name, tool.input_schema))
    if len({tool.name for tool in tools}) != len(tools):
        raise InvalidRequestError("Tool names must be unique.", param="tools")
    return tuple(tools)


def _tool_choice_instruction(choice: ToolChoice | None, tools: tuple[ClientTool, ...]) -> str:
    if choice is None or isinstance(choice, ToolChoiceNone) or not tools:
        return ""
    return tool_use_instruction(
        tools,
        named=choice.name if isinstance(choice, ToolChoiceTool) else None,
        required=isinstance(choice, ToolChoiceAny),
        one_call=bool(choice.disable_parallel_tool_use),
        param="tool_choice.name",
    )


# --- the answer ----------------------------------------------------------------------------------

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
    try:
        arguments = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        arguments = None
    # A call cut short (max_tokens) has incomplete JSON; its stop reason says so.
    return {
        "type": "tool_use",
        "id": call.call_id,
        "name": call.name,
        "input": arguments if isinstance(arguments, dict) else {},
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


# --- models --------------------------------------------------------------------------------------

_CATALOG_CREATED_AT = datetime.fromtimestamp(CATALOG_CREATED, UTC).isoformat().replace("+00:00", "Z")
_DATE_SUFFIX = re.compile(r"-\d{8}$")


def anthropic_model(model_id: str) -> dict[str, Any]:
    """One model in the shape of Anthropic's `GET /v1/models/{id}`."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name(model_id),
        "created_at": _CATALOG_CREATED_AT,
        "lifecycle": "active",
    }


def display_name(model_id: str) -> str:
    """A readable name: claude-3-5-haiku-20241022 → Claude 3.5 Haiku, sonnet → Claude Sonnet (latest)."""
    if model_id in OPENAI_ALIASES:
        return f"{model_id} (alias of {OPENAI_ALIASES[model_id]})"
    if not model_id.startswith("claude-"):
        return f"Claude {model_id.capitalize()} (latest)"
    words: list[str] = []
    for part in _DATE_SUFFIX.sub("", model_id).split("-")[1:]:
        if part.isdigit() and words and words[-1][-1].isdigit():
            words[-1] += f".{part}"
        else:
            words.append(part if part.isdigit() else part.capitalize())
    return "Claude " + " ".join(words)


def anthropic_model_list(
    model_ids: list[str], *, limit: int = 20, after_id: str | None = None, before_id: str | None = None
) -> dict[str, Any]:
    """A page of Anthropic's `GET /v1/models` list, with its cursors."""
    for param, cursor in (("after_id", after_id), ("before_id", before_id)):
        if cursor is not None and cursor not in model_ids:
            raise InvalidRequestError(f"{param}: no model has the id '{cursor}'.", param=param)
    if before_id is not None:
        # The page just before the cursor; more remain when the page does not reach the list's start.
        end = model_ids.index(before_id)
        start = max(0, end - limit)
        page, has_more = model_ids[start:end], start > 0
    else:
        start = 0 if after_id is None else model_ids.index(after_id) + 1
        page, has_more = model_ids[start : start + limit], start + limit < len(model_ids)
    return {
        "data": [anthropic_model(model_id) for model_id in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
