"""OpenAI chat requests to Claude turns, and Claude Code's messages back to OpenAI objects; pure.

Nothing here awaits, reads the clock or the environment: ids and timestamps come in as arguments, so
the same input always gives the same output.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

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

from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError
from claude_code_api.schemas import (
    AssistantMessage as OpenAIAssistantMessage,
)
from claude_code_api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChunkDelta,
    CompletionMessage,
    DeveloperMessage,
    FinishReason,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    NamedToolChoice,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallOut,
    ToolMessage,
    Usage,
    UserMessage,
)
from claude_code_api.schemas import (
    SystemMessage as OpenAISystemMessage,
)

ClaudeRole = Literal["user", "assistant"]
ContentBlock = dict[str, Any]

# Anthropic accepts these image types in base64 image blocks.
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.S)

# Client functions reach Claude Code as tools of an in-process MCP server named "client".
CLIENT_TOOL_PREFIX = "mcp__client__"
# Claude Code's tool that carries a structured (JSON) answer.
STRUCTURED_OUTPUT_TOOL = "StructuredOutput"
# The model name of the assistant messages Claude Code writes itself (errors, interrupted turns).
SYNTHETIC_MODEL = "<synthetic>"

# Claude Code starts a turn only on a new user prompt. When the conversation ends with tool results,
# those go into the replayed history and this prompt asks Claude to go on from them.
TOOL_RESULTS_PROMPT = "Continue: the tool results above answer your tool calls."

# Stop reasons that end an answer for lack of tokens.
LENGTH_STOP_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})

# Why a request for structured output fails, wherever the failure is noticed.
NO_STRUCTURED_ANSWER = (
    "Claude did not produce a JSON answer that matches the requested schema "
    "(it answered in prose, or its JSON failed the schema twice)."
)

# Claude's stop reasons as OpenAI finish reasons.
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


@dataclass(frozen=True)
class ClaudeTurn:
    """One message of the conversation as Claude sees it."""

    role: ClaudeRole
    content: tuple[ContentBlock, ...]


@dataclass(frozen=True)
class ClientTool:
    """A function the client offers; Claude may ask for it, the client runs it."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def claude_name(self) -> str:
        return CLIENT_TOOL_PREFIX + self.name


@dataclass(frozen=True)
class ClaudeRequest:
    """What one chat request asks of Claude Code."""

    model: str
    system_prompt: str | None
    history: tuple[ClaudeTurn, ...]
    prompt: tuple[ContentBlock, ...]
    max_output_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    effort: str | None = None
    client_tools: tuple[ClientTool, ...] = ()
    output_schema: dict[str, Any] | None = None


def translate_request(
    request: ChatCompletionRequest, model: ModelChoice, *, fetch_image_urls: bool = False
) -> ClaudeRequest:
    """Turns a validated chat request into a Claude request; refuses what Claude cannot honour.

    With `fetch_image_urls`, http(s) image URLs become URL sources for images.py to fetch.
    """
    refuse_unsupported_parameters(request)
    system_parts: list[str] = []
    turns: list[ClaudeTurn] = []
    for index, message in enumerate(request.messages):
        if isinstance(message, OpenAISystemMessage | DeveloperMessage):
            system_parts.append(_plain_text(message.content))
            continue
        turns.append(_claude_turn(message, index, fetch_image_urls))
    history, prompt = claude_conversation(turns, param="messages")
    tools = client_tools(request)
    system_parts.append(tool_choice_instruction(request, tools))
    stop = request.stop
    stop_sequences = (stop,) if isinstance(stop, str) else tuple(stop or ())
    return ClaudeRequest(
        model=model.claude_model,
        system_prompt="\n\n".join(part for part in system_parts if part) or None,
        history=history,
        prompt=prompt,
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        stop_sequences=tuple(s for s in stop_sequences if s),
        effort=_effort(request.reasoning_effort),
        client_tools=tools,
        output_schema=output_schema(request),
    )


def claude_conversation(
    turns: Iterable[ClaudeTurn], *, param: str
) -> tuple[tuple[ClaudeTurn, ...], tuple[ContentBlock, ...]]:
    """Splits a conversation into earlier turns and the prompt, which must be the user's.

    Claude expects alternating roles; the APIs allow repeats, which mean one longer turn. When the
    conversation ends with tool results, they go into the history and the prompt asks Claude to go on.
    """
    merged: list[ClaudeTurn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = ClaudeTurn(turn.role, merged[-1].content + turn.content)
        else:
            merged.append(turn)
    if not merged:
        raise InvalidRequestError(f"'{param}' must contain at least one user message.", param=param)
    if merged[-1].role != "user":
        raise InvalidRequestError(
            "The last message must come from the user (or a tool); "
            "continuing a partial assistant message is not supported.",
            param=param,
        )
    history, prompt = tuple(merged[:-1]), merged[-1].content
    if any(block["type"] == "tool_result" for block in prompt):
        history, prompt = tuple(merged), ({"type": "text", "text": TOOL_RESULTS_PROMPT},)
    return history, prompt


def client_tools(request: ChatCompletionRequest) -> tuple[ClientTool, ...]:
    """The functions Claude may call: none when `tool_choice` is "none"."""
    if not request.tools or request.tool_choice == "none":
        return ()
    names = [tool.function.name for tool in request.tools]
    if len(set(names)) != len(names):
        raise InvalidRequestError("Tool names must be unique.", param="tools")
    return tuple(
        ClientTool(
            name=tool.function.name,
            description=tool.function.description or tool.function.name,
            input_schema=tool_input_schema(tool.function.parameters),
        )
        for tool in request.tools
    )


def tool_input_schema(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """A function's parameters as Claude's tool input schema: an object with properties."""
    # OpenAI lets a function take no parameters.
    schema = dict(parameters or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def tool_choice_instruction(request: ChatCompletionRequest, tools: tuple[ClientTool, ...]) -> str:
    """System text for what Claude Code cannot set itself: a required tool, one call at a time."""
    choice = request.tool_choice
    return tool_use_instruction(
        tools,
        named=choice.function.name if isinstance(choice, NamedToolChoice) else None,
        required=choice == "required",
        one_call=request.parallel_tool_calls is False,
        param="tool_choice",
    )


def tool_use_instruction(
    tools: tuple[ClientTool, ...],
    *,
    named: str | None = None,
    required: bool = False,
    one_call: bool = False,
    param: str = "tool_choice",
) -> str:
    """System text for a tool choice Claude Code cannot pass upstream: a named or required tool call,
    at most one call. A named tool must be one of `tools` (400 naming `param` otherwise)."""
    if named is not None and named not in {tool.name for tool in tools}:
        raise InvalidRequestError(f"tool_choice names '{named}', which is not in 'tools'.", param=param)
    if not tools:
        return ""
    lines = []
    if named is not None:
        lines.append(f"You must answer by calling the tool {CLIENT_TOOL_PREFIX}{named}.")
    elif required:
        lines.append("You must answer by calling one or more of the available tools.")
    if one_call:
        lines.append("Call at most one tool in your answer.")
    return " ".join(lines)


def output_schema(request: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON schema the answer must follow: any object for json_object, the given one for json_schema."""
    response_format = request.response_format
    if isinstance(response_format, JsonObjectFormat):
        return {"type": "object"}
    if isinstance(response_format, JsonSchemaResponseFormat):
        return response_format.json_schema.schema_ or {"type": "object"}
    return None


def refuse_unsupported_parameters(request: ChatCompletionRequest) -> None:
    """Raises a 400 naming the first parameter Claude Code cannot honour."""
    refusals: list[tuple[str, bool, str]] = [
        ("n", (request.n or 1) > 1, "Claude returns one choice per request; use n=1."),
        ("logprobs", bool(request.logprobs), "Claude does not return log probabilities."),
        (
            "top_logprobs",
            request.top_logprobs is not None,
            "Claude does not return log probabilities.",
        ),
        ("logit_bias", bool(request.logit_bias), "Claude does not support logit bias."),
        ("audio", request.audio is not None, "audio output is not supported."),
        (
            "modalities",
            any(m != "text" for m in request.modalities or ()),
            "only text output is supported.",
        ),
        ("prediction", request.prediction is not None, "predicted outputs are not supported."),
        (
            "web_search_options",
            request.web_search_options is not None,
            "web search is not available through this gateway.",
        ),
        (
            "presence_penalty",
            bool(request.presence_penalty),
            "Claude has no presence penalty; leave it at 0.",
        ),
        (
            "frequency_penalty",
            bool(request.frequency_penalty),
            "Claude has no frequency penalty; leave it at 0.",
        ),
        ("functions", request.functions is not None, "use 'tools' instead."),
        ("function_call", request.function_call is not None, "use 'tool_choice' instead."),
        (
            "store",
            bool(request.store),
            "this gateway does not store completions; leave 'store' unset or false.",
        ),
        (
            "stream_options",
            request.stream_options is not None and not request.stream,
            "'stream_options' is only allowed when 'stream' is true.",
        ),
    ]
    for param, refused, reason in refusals:
        if refused:
            raise UnsupportedParameterError(param, reason)


def _effort(reasoning_effort: str | None) -> str | None:
    # Claude Code's effort levels are low, medium and high; OpenAI's extremes map to the nearest.
    if reasoning_effort is None:
        return None
    return {"none": "low", "minimal": "low", "xhigh": "high"}.get(reasoning_effort, reasoning_effort)


def _claude_turn(message: ChatMessage, index: int, fetch_image_urls: bool) -> ClaudeTurn:
    if isinstance(message, UserMessage):
        return ClaudeTurn("user", _user_content(message, index, fetch_image_urls))
    if isinstance(message, OpenAIAssistantMessage):
        return ClaudeTurn("assistant", _assistant_content(message, index))
    if isinstance(message, ToolMessage):
        result = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": _plain_text(message.content),
        }
        return ClaudeTurn("user", (result,))
    raise InvalidRequestError(f"Unexpected message role at messages[{index}].")


def _user_content(message: UserMessage, index: int, fetch_image_urls: bool) -> tuple[ContentBlock, ...]:
    if isinstance(message.content, str):
        return (_text_block(message.content, index),)
    blocks: list[ContentBlock] = []
    for part_index, part in enumerate(message.content):
        where = f"messages[{index}].content[{part_index}]"
        if isinstance(part, TextPart):
            blocks.append(_text_block(part.text, index))
        elif isinstance(part, ImagePart):
            blocks.append(image_block_from_url(part.image_url.url, where, fetch_allowed=fetch_image_urls))
        else:
            raise UnsupportedParameterError(where, f"content parts of type '{part.type}'.")
    if not blocks:
        raise InvalidRequestError(
            f"messages[{index}].content must not be empty.", param=f"messages[{index}].content"
        )
    return tuple(blocks)


def _assistant_content(message: OpenAIAssistantMessage, index: int) -> tuple[ContentBlock, ...]:
    if message.function_call is not None or message.audio is not None:
        raise UnsupportedParameterError(
            f"messages[{index}]", "legacy function_call and audio messages are not supported."
        )
    content = message.content
    if content is None or content == "" or content == []:
        text = message.refusal or ""
    elif isinstance(content, str):
        text = content
    else:
        text = "".join(p.text if isinstance(p, TextPart) else p.refusal for p in content)
    calls = tuple(_tool_use_block(call, index) for call in message.tool_calls or ())
    if calls and not text.strip():
        return calls
    return (_text_block(text, index), *calls)


def _tool_use_block(call: ToolCall, index: int) -> ContentBlock:
    try:
        arguments = orjson.loads(call.function.arguments or "{}")
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError(
            f"messages[{index}].tool_calls: the arguments of '{call.function.name}' must be a JSON object.",
            param=f"messages[{index}].tool_calls",
        )
    return {
        "type": "tool_use",
        "id": call.id,
        "name": CLIENT_TOOL_PREFIX + call.function.name,
        "input": arguments,
    }


def _text_block(text: str, index: int) -> ContentBlock:
    if not text.strip():
        # Anthropic refuses empty text blocks; say so here rather than as an upstream 400.
        raise InvalidRequestError(
            f"messages[{index}].content must not be empty.", param=f"messages[{index}].content"
        )
    return {"type": "text", "text": text}


def _plain_text(content: str | list[TextPart]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content)


def image_block_from_url(url: str, where: str, *, fetch_allowed: bool = False) -> ContentBlock:
    """An image block for an image URL: a `data:` URL inline; an http(s) URL as a URL source, which
    images.py fetches before the run, when the administrator allows it (else a 400)."""
    if url[:8].lower().startswith(("http://", "https://")):
        if fetch_allowed:
            return {"type": "image", "source": {"type": "url", "url": url}}
        raise UnsupportedParameterError(
            where,
            "image URLs must be data: URLs (base64 PNG, JPEG, GIF or WebP); this gateway does not "
            "fetch http(s) images unless its administrator allows it (IMAGE_URL_FETCH).",
        )
    return image_block_from_data_url(url, where)


def image_block_from_data_url(url: str, where: str) -> ContentBlock:
    """Turns a `data:` image URL into an Anthropic base64 image block; 400 when it is not one."""
    if not url.startswith("data:"):
        raise UnsupportedParameterError(
            where, "image URLs must be data: URLs (base64 PNG, JPEG, GIF or WebP)."
        )
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(f"{where}: the image is not a base64 data: URL.", param=where)
    return image_block_from_base64(match["media"], match["data"], where)


def image_block_from_base64(media_type: str, data: str, where: str) -> ContentBlock:
    """An Anthropic base64 image block, once its type and data are checked; 400 when they are bad."""
    media_type = media_type.lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            f"{where}: image type '{media_type}' is not supported; use PNG, JPEG, GIF or WebP.",
            param=where,
        )
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        decoded = b""
    if not decoded:
        raise InvalidRequestError(f"{where}: the image's base64 data is invalid.", param=where)
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


# --- Earlier turns as a Claude Code transcript --------------------------------------------------


def transcript_entries(
    history: Iterable[ClaudeTurn],
    *,
    session_id: str,
    cwd: str,
    model: str,
    timestamp: str,
    uuids: Iterator[str],
) -> list[dict[str, Any]]:
    """Earlier turns as the JSON lines of a Claude Code session file, so that a resume replays them.

    The CLI reads one line per turn, each linked to the previous through `parentUuid`.
    """
    entries: list[dict[str, Any]] = []
    parent: str | None = None
    for turn in history:
        uuid = next(uuids)
        message: dict[str, Any] = {"role": turn.role, "content": list(turn.content)}
        if turn.role == "assistant":
            message = {
                "id": f"msg_{uuid.replace('-', '')}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": list(turn.content),
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
        entries.append(
            {
                "type": turn.role,
                "message": message,
                "uuid": uuid,
                "parentUuid": parent,
                "sessionId": session_id,
                "cwd": cwd,
                "timestamp": timestamp,
                "isSidechain": False,
                "userType": "external",
            }
        )
        parent = uuid
    return entries


# --- Claude Code's messages back ----------------------------------------------------------------


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
                return self._cut_at_length(stop_reason, self._usage)
        return []

    def _cut_at_length(self, stop_reason: str | None, usage: dict[str, Any] | None) -> list[ReaderEvent]:
        """Ends the answer where Claude ran out of tokens.

        Claude Code would ask the model to go on (up to three more billed requests); for a client that
        set a limit, the answer ends here. The cost of the run is unknown at this point.
        """
        if stop_reason not in LENGTH_STOP_REASONS or self.tool_calls or self.structured:
            return []
        return [TurnFinished(stop_reason, ClaudeUsage.from_claude(usage), None, self.model)]

    def _start_block(self, index: int, block: dict[str, Any]) -> list[ReaderEvent]:
        kind = block.get("type")
        name = block.get("name", "")
        if kind == "text" and not self.structured:
            self._blocks[index] = "text"
        elif kind == "tool_use" and name == STRUCTURED_OUTPUT_TOOL and self.structured:
            self._blocks[index] = "json"
        elif kind == "tool_use" and name.startswith(CLIENT_TOOL_PREFIX):
            self._attempt.calls.append(
                ToolCallRecord(block.get("id", ""), name.removeprefix(CLIENT_TOOL_PREFIX))
            )
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
                elif block.name.startswith(CLIENT_TOOL_PREFIX):
                    name = block.name.removeprefix(CLIENT_TOOL_PREFIX)
                    self._attempt.calls.append(ToolCallRecord(block.id, name, arguments))
                    events += self._emit_call(len(self._committed.calls) + len(self._attempt.calls) - 1)
        self._commit()
        return events + self._cut_at_length(message.stop_reason, message.usage)

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
        keep = self._hold
        released = self._pending[: len(self._pending) - keep] if keep else self._pending
        self._pending = self._pending[len(released) :]
        return released

    def flush(self) -> str:
        """Returns what was held back once the answer is complete."""
        released, self._pending = ("" if self.stopped else self._pending), ""
        return released


def finish_reason(stop_reason: str | None, *, stopped_by_sequence: bool = False) -> FinishReason:
    """Claude's stop reason as an OpenAI finish reason."""
    if stopped_by_sequence:
        return "stop"
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


def openai_tool_call(call: ToolCallRecord) -> ToolCallOut:
    """A finished tool call in OpenAI's shape; arguments stay a JSON string."""
    return {
        "id": call.call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments or "{}"},
    }


def openai_usage(usage: ClaudeUsage) -> Usage:
    """Claude's token counts in OpenAI's usage shape."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def chat_completion(
    *,
    completion_id: str,
    created: int,
    model: str,
    text: str,
    finish: FinishReason,
    usage: ClaudeUsage,
    tool_calls: list[ToolCallRecord] | None = None,
) -> ChatCompletion:
    """A whole `chat.completion` object."""
    message: CompletionMessage = {"role": "assistant", "content": text or None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [openai_tool_call(call) for call in tool_calls]
    elif not text:
        message["content"] = ""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": openai_usage(usage),
        "system_fingerprint": None,
    }


@dataclass(frozen=True)
class ChunkFactory:
    """Builds the `chat.completion.chunk` objects of one streamed completion."""

    completion_id: str
    created: int
    model: str
    include_usage: bool = False

    def _chunk(self, delta: ChunkDelta, finish: FinishReason | None) -> ChatCompletionChunk:
        chunk: ChatCompletionChunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "system_fingerprint": None,
        }
        if self.include_usage:
            # OpenAI sends usage: null on every chunk but the last when usage was asked for.
            chunk["usage"] = None
        return chunk

    def role(self) -> ChatCompletionChunk:
        """The first chunk: it names the role."""
        return self._chunk({"role": "assistant", "content": "", "refusal": None}, None)

    def content(self, text: str) -> ChatCompletionChunk:
        return self._chunk({"content": text}, None)

    def tool_call_start(self, event: ToolCallStarted) -> ChatCompletionChunk:
        """The first delta of a tool call: its index, id, name and empty arguments, as OpenAI sends."""
        delta: ToolCallDelta = {
            "index": event.index,
            "id": event.call_id,
            "type": "function",
            "function": {"name": event.name, "arguments": ""},
        }
        return self._chunk({"tool_calls": [delta]}, None)

    def tool_call_arguments(self, event: ToolCallArguments) -> ChatCompletionChunk:
        return self._chunk(
            {"tool_calls": [{"index": event.index, "function": {"arguments": event.json}}]}, None
        )

    def finish(self, reason: FinishReason) -> ChatCompletionChunk:
        return self._chunk({}, reason)

    def usage(self, usage: ClaudeUsage) -> ChatCompletionChunk:
        """The chunk after the last choice chunk when `stream_options.include_usage` is set."""
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "system_fingerprint": None,
            "usage": openai_usage(usage),
        }
