"""Claude's answer as OpenAI chat objects: a whole `chat.completion`, or its `chat.completion.chunk`
stream; pure."""

from __future__ import annotations

from dataclasses import dataclass

from claude_code_api.answer.events import (
    Answer,
    ClaudeUsage,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
)
from claude_code_api.answer.request import LENGTH_STOP_REASONS
from claude_code_api.apis.openai_chat.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkDelta,
    CompletionMessage,
    FinishReason,
    ToolCallDelta,
    ToolCallOut,
    Usage,
)
from claude_code_api.errors import GatewayError
from claude_code_api.sse import DONE, encode_event

# Claude's stop reasons as OpenAI finish reasons.
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    **dict.fromkeys(LENGTH_STOP_REASONS, "length"),
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


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


@dataclass
class ChatChunkEncoder:
    """The `chat.completion.chunk` stream of one completion, from the role chunk to `[DONE]`."""

    completion_id: str
    created: int
    include_usage: bool
    _chunks: ChunkFactory | None = None

    @property
    def chunks(self) -> ChunkFactory:
        assert self._chunks is not None  # start() comes first
        return self._chunks

    def whole(self, answer: Answer) -> ChatCompletion:
        """The answer as one `chat.completion`, for a request that did not ask for a stream."""
        return chat_completion(
            completion_id=self.completion_id,
            created=self.created,
            model=answer.end.run.model,
            text=answer.text,
            finish=finish_reason(answer.end.stop_reason),
            usage=answer.end.run.usage,
            tool_calls=answer.tool_calls,
        )

    def start(self, model: str) -> bytes:
        self._chunks = ChunkFactory(self.completion_id, self.created, model, self.include_usage)
        return encode_event(self.chunks.role())

    def text(self, text: str) -> bytes:
        return encode_event(self.chunks.content(text))

    def tool_call_start(self, event: ToolCallStarted) -> bytes:
        return encode_event(self.chunks.tool_call_start(event))

    def tool_call_arguments(self, event: ToolCallArguments) -> bytes:
        return encode_event(self.chunks.tool_call_arguments(event))

    def finish(self, stop_reason: str | None, stop_sequence: str | None, usage: ClaudeUsage) -> bytes:
        chunk = encode_event(self.chunks.finish(finish_reason(stop_reason)))
        if self.include_usage:
            chunk += encode_event(self.chunks.usage(usage))
        return chunk + DONE

    def error(self, error: GatewayError) -> bytes:
        # The openai client raises an APIError on a data event that carries `error`.
        return encode_event(error.to_body())
