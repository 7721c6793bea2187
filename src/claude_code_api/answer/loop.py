"""One Claude answer: run Claude for a request and pass its answer on, whole or as a stream.

`answer_events` is the one loop over a run that every API shares: it cuts the text at stop sequences,
releases a structured answer only once Claude Code has checked it, and reports the run. Each API
(apis/) supplies a `StreamEncoder` for its wire format; the run itself comes from a `Runner`, which
claude/ provides with real Claude Code processes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Protocol

import orjson
from claude_agent_sdk import Message, StreamEvent

from claude_code_api.answer.events import (
    Answer,
    AnswerEvent,
    AnswerFinished,
    AnswerStarted,
    ClaudeUsage,
    ReportSink,
    RunReport,
    TextDelta,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
    TurnFinished,
)
from claude_code_api.answer.reader import ClaudeStreamReader, StopScanner
from claude_code_api.answer.request import NO_STRUCTURED_ANSWER, ClaudeRequest
from claude_code_api.errors import GatewayError, ModelNotFoundError, UpstreamError
from claude_code_api.model_table import BUILT_IN_MODELS, ModelTable
from claude_code_api.upstream import UpstreamCredential


@dataclass(frozen=True)
class RunSpec:
    """One request for Claude Code, with the upstream credentials of the key that made it, best rank
    first (credentials of one rank are equals), and the model ids each kind knows; the runner chooses
    a credential."""

    ranks: tuple[tuple[UpstreamCredential, ...], ...]
    request: ClaudeRequest
    models: ModelTable = BUILT_IN_MODELS

    @classmethod
    def on(
        cls, credential: UpstreamCredential, request: ClaudeRequest, models: ModelTable = BUILT_IN_MODELS
    ) -> RunSpec:
        """A request for one credential alone, in its upstream's terms: the model asked for as that
        upstream knows it, and the credential with its family ids pinned (so its process never probes).
        Raises ModelNotFoundError when the credential does not serve the model."""
        upstream_model = models.upstream_model(credential, request.model)
        if upstream_model is None:
            raise ModelNotFoundError(request.model)
        return cls(((models.pinned(credential),),), replace(request, model=upstream_model), models)

    @property
    def credential(self) -> UpstreamCredential:
        """The credential of a request the runner has given one (its first otherwise)."""
        return self.ranks[0][0]

    def __repr__(self) -> str:
        names = " > ".join(",".join(c.name for c in rank) for rank in self.ranks)
        return f"RunSpec(model={self.request.model!r}, credentials={names!r})"


class Runner(Protocol):
    """What runs Claude Code for a request (claude/runner.py has the real one)."""

    def run(self, spec: RunSpec) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Has Claude answer one request; the context yields its messages up to the result."""
        ...

    async def count_tokens(self, spec: RunSpec) -> int:
        """The input tokens of a request as Claude Code would send it, nothing generated."""
        ...


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


async def answer_events(
    runner: Runner, spec: RunSpec, report: ReportSink
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


async def collect_answer(runner: Runner, spec: RunSpec, report: ReportSink) -> Answer:
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


class AnswerEncoder(StreamEncoder, Protocol):
    """One wire format's answer: streamed, or whole as one JSON object."""

    def whole(self, answer: Answer) -> object: ...


async def stream_answer(
    runner: Runner, spec: RunSpec, encoder: StreamEncoder, report: ReportSink
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
    runner: Runner, spec: RunSpec, encoder: StreamEncoder, report: ReportSink
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
