"""One Claude answer: run Claude for a request and pass its answer on, whole or as a stream.

`answer_events` is the one loop over a run that every API shares: it cuts the text at stop sequences,
releases a structured answer only once Claude Code has checked it, and reports the run. The wire
formats (OpenAI chat here, Anthropic Messages in messages_api.py, Responses in responses_api.py) are
encoders of its events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from claude_agent_sdk import StreamEvent

from claude_code_api.errors import GatewayError, UpstreamError
from claude_code_api.runner import ClaudeRunner, RunSpec
from claude_code_api.schemas import ChatCompletion
from claude_code_api.sse import DONE, encode_event
from claude_code_api.translate import (
    NO_STRUCTURED_ANSWER,
    ChunkFactory,
    ClaudeStreamReader,
    ClaudeUsage,
    StopScanner,
    TextDelta,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
    TurnFinished,
    chat_completion,
    finish_reason,
)


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


@dataclass
class _Clock:
    started: float
    first_token: float | None = None

    def mark_first_token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()

    def report(
        self,
        status: int,
        model: str,
        usage: ClaudeUsage,
        cost_usd: float | None,
        error: GatewayError | None = None,
    ) -> RunReport:
        first = None if self.first_token is None else (self.first_token - self.started) * 1000
        total = (time.monotonic() - self.started) * 1000
        return RunReport(status, model, usage, cost_usd, first, total, error)


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


async def answer_events(
    runner: ClaudeRunner, spec: RunSpec, report: ReportSink
) -> AsyncGenerator[AnswerEvent, None]:
    """Runs Claude for one request and yields its answer, reporting the run however it ends.

    `AnswerStarted` comes before anything else. Text after a stop sequence is left out, and so are
    tool calls Claude makes after it, which a real stop would have prevented. A structured answer
    comes as one text delta, after Claude Code has checked it against the schema (a rejected attempt
    is retried inside the run and must never reach the client). GatewayErrors propagate.
    """
    clock = _Clock(time.monotonic())
    request = spec.request
    structured = request.output_schema is not None
    reader = ClaudeStreamReader(structured=structured)
    scanner = StopScanner(request.stop_sequences)
    model = request.model
    started = reported = False
    try:
        async with runner.run(spec) as messages:
            async for message in messages:
                events = reader.read(message)
                if not started and (isinstance(message, StreamEvent) or events):
                    started = True
                    model = reader.model or model
                    yield AnswerStarted(model)
                for event in events:
                    if isinstance(event, TextDelta):
                        clock.mark_first_token()
                        text = "" if structured else scanner.feed(event.text)
                        if text:
                            yield TextDelta(text)
                    elif isinstance(event, ToolCallStarted | ToolCallArguments):
                        clock.mark_first_token()
                        if not scanner.stopped:
                            yield event
                    elif isinstance(event, TurnFinished):
                        model = event.model or model
                        rest = _final_text(event, reader, scanner, structured)
                        if rest is None:
                            # Claude was paid for an answer that cannot be used: record what it cost.
                            reported = True
                            report(clock.report(UpstreamError.status, model, event.usage, event.cost_usd))
                            raise UpstreamError(NO_STRUCTURED_ANSWER)
                        if rest:
                            yield TextDelta(rest)
                        run = clock.report(200, model, event.usage, event.cost_usd)
                        reported = True
                        report(run)
                        stop_reason = "stop_sequence" if scanner.stopped else event.stop_reason
                        yield AnswerFinished(stop_reason, scanner.matched, run)
                        # An answer cut for length ends here although Claude Code would go on.
                        return
    except GatewayError as error:
        if not reported:
            report(clock.report(error.status, model, ClaudeUsage(), None, error))
        raise


def _final_text(
    finished: TurnFinished, reader: ClaudeStreamReader, scanner: StopScanner, structured: bool
) -> str | None:
    """What is left to send at the end: held-back text, or the structured answer (None: missing)."""
    if not structured or reader.tool_calls:
        return scanner.flush()
    if finished.structured_output is None:
        return None
    return orjson.dumps(finished.structured_output).decode()


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


async def collect_answer(runner: ClaudeRunner, spec: RunSpec, report: ReportSink) -> Answer:
    """Runs Claude to the end and returns the whole answer."""
    answer = Answer()
    async with contextlib.aclosing(answer_events(runner, spec, report)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                answer.text += event.text
            elif isinstance(event, ToolCallStarted):
                answer.tool_calls.append(ToolCallRecord(event.call_id, event.name))
            elif isinstance(event, ToolCallArguments):
                answer.tool_calls[event.index].arguments += event.json
            elif isinstance(event, AnswerFinished):
                answer.finished = event
    assert answer.finished is not None  # the runner ends every run with a result or an error
    return answer


class FinalChunk(bytes):
    """The bytes that end an answer's stream (for chat, with `[DONE]`): once they go out, the client
    has all of it, while the run may still be winding down."""


def is_final_chunk(chunk: bytes) -> bool:
    """Whether a stream's chunk is the one that ends the answer."""
    return isinstance(chunk, FinalChunk)


class StreamEncoder(Protocol):
    """Turns answer events into the bytes of one wire format's stream."""

    def start(self, model: str) -> bytes: ...

    def text(self, text: str) -> bytes: ...

    def tool_call_start(self, event: ToolCallStarted) -> bytes: ...

    def tool_call_arguments(self, event: ToolCallArguments) -> bytes: ...

    def finish(self, stop_reason: str | None, stop_sequence: str | None, usage: ClaudeUsage) -> bytes: ...

    def error(self, error: GatewayError) -> bytes: ...


async def stream_answer(
    runner: ClaudeRunner, spec: RunSpec, encoder: StreamEncoder, report: ReportSink
) -> AsyncIterator[bytes]:
    """Opens a streamed answer in `encoder`'s format.

    It returns once Claude has started answering, so that a failure before that (a rejected token,
    a rate limit) reaches the client as an HTTP error, not as a stream.
    """
    body = _encode(runner, spec, encoder, report)
    first = await anext(body)

    async def stream() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(body):
            yield first
            async for chunk in body:
                yield chunk

    return stream()


async def _encode(
    runner: ClaudeRunner, spec: RunSpec, encoder: StreamEncoder, report: ReportSink
) -> AsyncGenerator[bytes, None]:
    started = False
    try:
        async with contextlib.aclosing(answer_events(runner, spec, report)) as events:
            async for event in events:
                if isinstance(event, AnswerStarted):
                    started = True
                    yield encoder.start(event.model)
                elif isinstance(event, TextDelta):
                    yield encoder.text(event.text)
                elif isinstance(event, ToolCallStarted):
                    yield encoder.tool_call_start(event)
                elif isinstance(event, ToolCallArguments):
                    yield encoder.tool_call_arguments(event)
                else:
                    yield FinalChunk(encoder.finish(event.stop_reason, event.stop_sequence, event.run.usage))
    except GatewayError as error:
        if not started:
            raise
        # Headers are gone: the error travels as the format's error event.
        yield encoder.error(error)


# --- OpenAI chat completions ---------------------------------------------------------------------


async def complete_chat(
    runner: ClaudeRunner,
    spec: RunSpec,
    *,
    completion_id: str,
    created: int,
    report: ReportSink,
) -> tuple[ChatCompletion, RunReport]:
    """Runs Claude to the end and returns the whole `chat.completion`."""
    answer = await collect_answer(runner, spec, report)
    completion = chat_completion(
        completion_id=completion_id,
        created=created,
        model=answer.end.run.model,
        text=answer.text,
        finish=finish_reason(answer.end.stop_reason),
        usage=answer.end.run.usage,
        tool_calls=answer.tool_calls,
    )
    return completion, answer.end.run


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


async def stream_chat(
    runner: ClaudeRunner,
    spec: RunSpec,
    *,
    completion_id: str,
    created: int,
    include_usage: bool,
    report: ReportSink,
) -> AsyncIterator[bytes]:
    """Opens a streamed completion: SSE bytes, from the role chunk to `[DONE]`."""
    encoder = ChatChunkEncoder(completion_id, created, include_usage)
    return await stream_answer(runner, spec, encoder, report)
