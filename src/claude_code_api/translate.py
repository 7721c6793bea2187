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

from claude_agent_sdk import (
    AssistantMessage,
    Message,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
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
    DeveloperMessage,
    FinishReason,
    ImagePart,
    TextPart,
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
class ClaudeRequest:
    """What one chat request asks of Claude Code."""

    model: str
    system_prompt: str | None
    history: tuple[ClaudeTurn, ...]
    prompt: tuple[ContentBlock, ...]
    max_output_tokens: int | None
    stop_sequences: tuple[str, ...]
    effort: str | None = None


def translate_request(request: ChatCompletionRequest, model: ModelChoice) -> ClaudeRequest:
    """Turns a validated chat request into a Claude request; refuses what Claude cannot honour."""
    refuse_unsupported_parameters(request)
    system_parts: list[str] = []
    turns: list[ClaudeTurn] = []
    for index, message in enumerate(request.messages):
        if isinstance(message, OpenAISystemMessage | DeveloperMessage):
            system_parts.append(_plain_text(message.content))
            continue
        turn = _claude_turn(message, index)
        if turns and turns[-1].role == turn.role:
            # Claude expects alternating roles; OpenAI allows repeats, which mean one longer turn.
            turns[-1] = ClaudeTurn(turn.role, turns[-1].content + turn.content)
        else:
            turns.append(turn)
    if not turns:
        raise InvalidRequestError("'messages' must contain at least one user message.", param="messages")
    if turns[-1].role != "user":
        raise InvalidRequestError(
            "The last message must come from the user (or a tool); "
            "continuing a partial assistant message is not supported.",
            param="messages",
        )
    stop = request.stop
    stop_sequences = (stop,) if isinstance(stop, str) else tuple(stop or ())
    return ClaudeRequest(
        model=model.claude_model,
        system_prompt="\n\n".join(part for part in system_parts if part) or None,
        history=tuple(turns[:-1]),
        prompt=turns[-1].content,
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        stop_sequences=tuple(s for s in stop_sequences if s),
        effort=_effort(request.reasoning_effort),
    )


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
            "tools",
            bool(request.tools),
            "function calling is not available yet on this gateway.",
        ),
        (
            "tool_choice",
            request.tool_choice not in (None, "none", "auto"),
            "function calling is not available yet on this gateway.",
        ),
        (
            "response_format",
            request.response_format is not None and request.response_format.type != "text",
            "structured output is not available yet on this gateway.",
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


def _claude_turn(message: ChatMessage, index: int) -> ClaudeTurn:
    if isinstance(message, UserMessage):
        return ClaudeTurn("user", _user_content(message, index))
    if isinstance(message, OpenAIAssistantMessage):
        return ClaudeTurn("assistant", _assistant_content(message, index))
    if isinstance(message, ToolMessage):
        raise UnsupportedParameterError(
            f"messages[{index}]", "tool messages need function calling, not available yet."
        )
    raise InvalidRequestError(f"Unexpected message role at messages[{index}].")


def _user_content(message: UserMessage, index: int) -> tuple[ContentBlock, ...]:
    if isinstance(message.content, str):
        return (_text_block(message.content, index),)
    blocks: list[ContentBlock] = []
    for part_index, part in enumerate(message.content):
        where = f"messages[{index}].content[{part_index}]"
        if isinstance(part, TextPart):
            blocks.append(_text_block(part.text, index))
        elif isinstance(part, ImagePart):
            blocks.append(image_block_from_data_url(part.image_url.url, where))
        else:
            raise UnsupportedParameterError(where, f"content parts of type '{part.type}'.")
    if not blocks:
        raise InvalidRequestError(
            f"messages[{index}].content must not be empty.", param=f"messages[{index}].content"
        )
    return tuple(blocks)


def _assistant_content(message: OpenAIAssistantMessage, index: int) -> tuple[ContentBlock, ...]:
    if message.tool_calls:
        raise UnsupportedParameterError(
            f"messages[{index}].tool_calls", "function calling is not available yet."
        )
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
    return (_text_block(text, index),)


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


def image_block_from_data_url(url: str, where: str) -> ContentBlock:
    """Turns a `data:` image URL into an Anthropic base64 image block; 400 when it is not one."""
    if not url.startswith("data:"):
        raise UnsupportedParameterError(
            where, "image URLs must be data: URLs (base64 PNG, JPEG, GIF or WebP)."
        )
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(f"{where}: the image is not a base64 data: URL.", param=where)
    media_type = match["media"].lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            f"{where}: image type '{media_type}' is not supported; use PNG, JPEG, GIF or WebP.",
            param=where,
        )
    data = match["data"]
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error:
        raise InvalidRequestError(f"{where}: the image's base64 data is invalid.", param=where) from None
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
    """New answer text, in order."""

    text: str


@dataclass(frozen=True)
class TurnFinished:
    """The end of Claude's answer, with what it cost."""

    stop_reason: str | None
    usage: ClaudeUsage
    cost_usd: float | None
    model: str | None


ReaderEvent = TextDelta | TurnFinished


@dataclass
class ClaudeStreamReader:
    """Turns Claude Code's messages into answer text and one final event.

    Text comes from the partial stream events as Claude writes it. When the CLI retries a broken stream
    without streaming, the deltas seen were only a prefix: the complete assistant message that follows
    supplies the missing rest.
    """

    streamed_text: str = ""
    complete_text: str = ""
    model: str | None = None
    stop_reason: str | None = None
    result: ResultMessage | None = field(default=None, repr=False)

    def read(self, message: Message) -> list[ReaderEvent]:
        """Returns the events one SDK message adds."""
        if isinstance(message, StreamEvent):
            return self._read_stream_event(message)
        if isinstance(message, AssistantMessage) and message.parent_tool_use_id is None:
            return self._read_assistant(message)
        if isinstance(message, SystemMessage) and message.subtype == "init":
            self.model = message.data.get("model") or self.model
        elif isinstance(message, ResultMessage):
            self.result = message
            return [
                TurnFinished(
                    stop_reason=message.stop_reason or self.stop_reason,
                    usage=ClaudeUsage.from_claude(message.usage),
                    cost_usd=message.total_cost_usd,
                    model=self.model,
                )
            ]
        return []

    @property
    def text(self) -> str:
        """All answer text so far."""
        return (
            self.complete_text if len(self.complete_text) >= len(self.streamed_text) else (self.streamed_text)
        )

    def _read_stream_event(self, message: StreamEvent) -> list[ReaderEvent]:
        if message.parent_tool_use_id is not None:
            return []
        event = message.event
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta", {})
            if delta.get("type") == "text_delta" and delta.get("text"):
                self.streamed_text += delta["text"]
                return [TextDelta(delta["text"])]
        elif kind == "message_delta":
            self.stop_reason = event.get("delta", {}).get("stop_reason") or self.stop_reason
        elif kind == "message_start":
            self.model = event.get("message", {}).get("model") or self.model
        return []

    def _read_assistant(self, message: AssistantMessage) -> list[ReaderEvent]:
        if message.stop_reason:
            self.stop_reason = message.stop_reason
        self.complete_text += "".join(b.text for b in message.content if isinstance(b, TextBlock))
        if len(self.complete_text) > len(self.streamed_text) and self.complete_text.startswith(
            self.streamed_text
        ):
            missing = self.complete_text[len(self.streamed_text) :]
            self.streamed_text = self.complete_text
            return [TextDelta(missing)]
        return []


class StopScanner:
    """Cuts the answer at the first of OpenAI's `stop` sequences, which is itself left out.

    Text that might be the start of a stop sequence is held back until the next delta decides it.
    """

    def __init__(self, stop_sequences: tuple[str, ...]) -> None:
        self._stops = stop_sequences
        self._hold = max((len(s) for s in stop_sequences), default=1) - 1
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Returns the text that can be released now."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
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
) -> ChatCompletion:
    """A whole `chat.completion` object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
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
