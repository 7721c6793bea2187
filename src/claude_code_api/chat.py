"""One chat completion: run Claude for a request and translate its messages, whole or as a stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson
from claude_agent_sdk import StreamEvent

from claude_code_api.errors import GatewayError
from claude_code_api.runner import ClaudeRunner, RunSpec
from claude_code_api.schemas import ChatCompletion
from claude_code_api.sse import DONE, encode_event
from claude_code_api.translate import (
    ChunkFactory,
    ClaudeStreamReader,
    ClaudeUsage,
    StopScanner,
    TextDelta,
    ToolCallArguments,
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


ReportSink = Callable[[RunReport], None]


@dataclass
class _Clock:
    started: float
    first_token: float | None = None

    def mark_first_token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()

    def report(self, status: int, model: str, usage: ClaudeUsage, cost_usd: float | None) -> RunReport:
        first = None if self.first_token is None else (self.first_token - self.started) * 1000
        total = (time.monotonic() - self.started) * 1000
        return RunReport(status, model, usage, cost_usd, first, total)


async def complete_chat(
    runner: ClaudeRunner,
    spec: RunSpec,
    *,
    completion_id: str,
    created: int,
    report: ReportSink,
) -> tuple[ChatCompletion, RunReport]:
    """Runs Claude to the end and returns the whole `chat.completion`."""
    clock = _Clock(time.monotonic())
    reader = ClaudeStreamReader(structured=spec.request.output_schema is not None)
    finished: TurnFinished | None = None
    try:
        async with runner.run(spec) as messages:
            async for message in messages:
                for event in reader.read(message):
                    if isinstance(event, TextDelta | ToolCallStarted):
                        clock.mark_first_token()
                    elif isinstance(event, TurnFinished):
                        finished = event
    except GatewayError as error:
        report(clock.report(error.status, spec.request.model, ClaudeUsage(), None))
        raise
    assert finished is not None  # the runner ends every run with a result or an error
    scanner = StopScanner(spec.request.stop_sequences)
    if finished.structured_output is not None:
        text = orjson.dumps(finished.structured_output).decode()
    else:
        text = scanner.feed(reader.text) + scanner.flush()
    model = finished.model or spec.request.model
    run_report = clock.report(200, model, finished.usage, finished.cost_usd)
    report(run_report)
    completion = chat_completion(
        completion_id=completion_id,
        created=created,
        model=model,
        text=text,
        finish=finish_reason(finished.stop_reason, stopped_by_sequence=scanner.stopped),
        usage=finished.usage,
        tool_calls=reader.tool_calls,
    )
    return completion, run_report


async def stream_chat(
    runner: ClaudeRunner,
    spec: RunSpec,
    *,
    completion_id: str,
    created: int,
    include_usage: bool,
    report: ReportSink,
) -> AsyncIterator[bytes]:
    """Opens a streamed completion: SSE bytes, from the role chunk to `[DONE]`.

    The first chunk is produced only once Claude has started answering, so that a failure before
    that (a rejected token, a rate limit) reaches the client as an HTTP error, not as a stream.
    """
    events = _stream_events(runner, spec, completion_id, created, include_usage, report)
    first = await anext(events)

    async def stream() -> AsyncIterator[bytes]:
        yield first
        async for event in events:
            yield event

    return stream()


async def _stream_events(
    runner: ClaudeRunner,
    spec: RunSpec,
    completion_id: str,
    created: int,
    include_usage: bool,
    report: ReportSink,
) -> AsyncIterator[bytes]:
    clock = _Clock(time.monotonic())
    reader = ClaudeStreamReader(structured=spec.request.output_schema is not None)
    scanner = StopScanner(spec.request.stop_sequences)
    chunks = ChunkFactory(completion_id, created, spec.request.model, include_usage)
    started = False
    model = spec.request.model
    try:
        async with runner.run(spec) as messages:
            async for message in messages:
                events = reader.read(message)
                if not started and isinstance(message, StreamEvent):
                    # Claude has answered: from here on, failures travel inside the stream.
                    started = True
                    model = reader.model or model
                    chunks = ChunkFactory(completion_id, created, model, include_usage)
                    yield encode_event(chunks.role())
                for event in events:
                    if isinstance(event, TextDelta):
                        clock.mark_first_token()
                        text = scanner.feed(event.text)
                        if text:
                            yield encode_event(chunks.content(text))
                    elif isinstance(event, ToolCallStarted):
                        clock.mark_first_token()
                        yield encode_event(chunks.tool_call_start(event))
                    elif isinstance(event, ToolCallArguments):
                        yield encode_event(chunks.tool_call_arguments(event))
                    elif isinstance(event, TurnFinished):
                        rest = scanner.flush()
                        if rest:
                            yield encode_event(chunks.content(rest))
                        reason = finish_reason(event.stop_reason, stopped_by_sequence=scanner.stopped)
                        yield encode_event(chunks.finish(reason))
                        if include_usage:
                            yield encode_event(chunks.usage(event.usage))
                        report(clock.report(200, model, event.usage, event.cost_usd))
        yield DONE
    except GatewayError as error:
        report(clock.report(error.status, model, ClaudeUsage(), None))
        if not started:
            raise
        # Headers are gone: the error travels as an event, which the openai client raises.
        yield encode_event(error.to_body())
