"""The pool of live Claude Code processes: which one answers a request, and how many may live at once.

Starting Claude Code costs about half a CPU-second; a turn in a live process costs milliseconds. So a
process that has answered is kept, and the next request with the same credential and spawn-time options
takes it, whatever its conversation:

- a request that brings the results of the client function calls a process is waiting inside gets that
  process, and the results go in as the real tool results (`handover.py`);
- otherwise the idle process that needs the fewest rewinds to hold the request's history takes it: the
  one already holding that exact conversation (a continued chat), one holding it as an earlier point (a
  regenerated answer), or any other, emptied (a new conversation), least recently used first;
- only when none can serve is a process started, holding the request's history from a transcript.

A turn starts once the cores have room for it (`admission.py`): while the turns running already want
every CPU, more at once would only slow them all.

A process is never shared by two requests, never reset while a turn runs or waits in it, and never
crosses credentials. A global limit (`capacity.py`), derived from the memory a process takes and the
memory free now, bounds running, idle, waiting and starting processes together; idle ones make room for
new ones (least recently used first) and go when memory runs short; requests past the limit wait in a
queue, and past its timeout get a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
from claude_agent_sdk import (
    AssistantMessage,
    Message,
    RateLimitEvent,
    ResultMessage,
    StreamEvent,
    UserMessage,
)

from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import ClaudeTurn
from claude_code_api.claude import launcher
from claude_code_api.claude.admission import AdmittedTurn, TurnAdmission, usable_cores
from claude_code_api.claude.capacity import ProcessLimit
from claude_code_api.claude.conversation import EMPTY, fingerprint
from claude_code_api.claude.handover import tool_outcomes
from claude_code_api.claude.options import spawn_signature
from claude_code_api.claude.process import ClaudeProcess, ProcessUnusable
from claude_code_api.claude.routing import CredentialRouter, answered_by
from claude_code_api.claude.turn import ProcessEnded, Turn
from claude_code_api.config import Settings
from claude_code_api.errors import ClaudeUnavailableError, GatewayError
from claude_code_api.runtime_dirs import create_runtime_dir

logger = logging.getLogger(__name__)

REAP_INTERVAL_SECONDS = 2.0
# A process is measured after its first turns, then every this many turns: reading its size scans /proc
# (~1.5 ms of the gateway's CPU), and a process grows slowly.
MEASURE_EVERY_TURNS = 16
# How long an interrupted turn may take to wind down before its process is ended instead.
RECOVERY_SECONDS = 3.0


@dataclass(frozen=True)
class RunnerStats:
    """The runner's processes at one moment and its counters since start, for health and metrics."""

    running: int
    idle: int
    parked: int
    starting: int
    queued: int
    waiting_for_cpu: int
    process_limit: int
    started: int
    reused: int
    resets: int
    parks: int
    resumes: int
    cpu_waits: int


@dataclass(eq=False)
class _Idle:
    process: ClaudeProcess
    signature: str
    since: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Parked:
    """A process waiting inside client function calls for the request that brings their results."""

    process: ClaudeProcess
    turn: Turn
    signature: str
    deadline: float


class ClaudeRunner:
    """Serves requests from live Claude Code processes within a global limit."""

    def __init__(self, settings: Settings, router: CredentialRouter | None = None) -> None:
        self._settings = settings
        self._router = router or CredentialRouter()
        self._runtime_dir: Path | None = None
        self._launcher_path: Path | None = None
        self._idle: list[_Idle] = []  # least recently used first
        self._parked: dict[str, _Parked] = {}  # by the fingerprint of the conversation they hold
        self._running: set[ClaudeProcess] = set()
        self._limit = ProcessLimit(settings.max_claude_processes, settings.queue_timeout)
        self._starting_now = 0
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._cancellable: set[asyncio.Task[None]] = set()
        self._spares_starting: dict[str, int] = {}
        self._counts = {"started": 0, "reused": 0, "resets": 0, "parks": 0, "resumes": 0}
        cores = usable_cores()
        self._starting = asyncio.Semaphore(max(2, cores))
        self._admission = TurnAdmission(settings.turns_per_core * cores or math.inf)

    @property
    def active_runs(self) -> int:
        """How many Claude processes are answering now."""
        return len(self._running)

    def answered_quota(self) -> dict[str, str]:
        """The quota headers of the subscription that answers the current request, as last reported
        (nothing for other kinds, or before its first answer)."""
        credential = answered_by.get()
        if credential is None or credential.kind != "subscription":
            return {}
        return dict(self._router.health(credential.name).quota)

    @property
    def router(self) -> CredentialRouter:
        return self._router

    def stats(self) -> RunnerStats:
        """Counts of running, idle, parked, starting and queued processes, the limit, and the counters."""
        return RunnerStats(
            running=len(self._running),
            idle=len(self._idle),
            parked=len(self._parked),
            starting=self._starting_now,
            queued=self._limit.waiting,
            waiting_for_cpu=self._admission.waiting,
            process_limit=self._limit.limit,
            cpu_waits=self._admission.waited,
            **self._counts,
        )

    def start(self) -> None:
        """Creates the runtime directory and the launcher, and starts the reaper."""
        base = self._settings.run_dir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        self._runtime_dir = create_runtime_dir(base)
        self._launcher_path = self._runtime_dir / "claude-launcher"
        source = Path(launcher.__file__).read_text()
        self._launcher_path.write_text(f"#!{sys.executable} -IS\n{source}")
        self._launcher_path.chmod(0o700)
        self._spawn_background(self._reap(), cancellable=True)

    async def aclose(self) -> None:
        """Ends every Claude process, running, waiting or idle, and removes the runtime directory."""
        self.end_running_answers()
        for task in self._cancellable:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        kept = [entry.process for entry in self._idle] + [entry.process for entry in self._parked.values()]
        self._idle, self._parked = [], {}
        # Signalled rather than asked to finish: a stopping server has no seconds to spare.
        await asyncio.gather(*(process.stop(running=True) for process in kept))
        deadline = time.monotonic() + 5
        while self._running and time.monotonic() < deadline:  # noqa: ASYNC110 - runs end in their tasks
            await asyncio.sleep(0.02)
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None

    def end_running_answers(self) -> None:
        """Ends every answer in progress; their clients get a 503 (or an error event) saying why."""
        self._closing = True
        for process in list(self._running):
            process.terminate()

    @contextlib.asynccontextmanager
    async def run(self, spec: RunSpec) -> AsyncIterator[AsyncIterator[Message]]:
        """Has Claude answer one request and yields its messages, up to the result or as far as the
        caller reads. On leaving, however the run ended, its process is idle, waiting inside client
        function calls, being recovered, or gone."""
        messages = self._answer(spec)
        try:
            yield messages
        finally:
            with anyio.CancelScope(shield=True):
                await messages.aclose()

    async def _answer(self, spec: RunSpec) -> AsyncGenerator[Message, None]:
        """The messages of the run, on the credential the router chooses; a run that fails before
        anything of the answer came moves to another credential when the failure allows it."""
        async with self._admission.turn() as admitted:
            history = fingerprint(spec.request.history)
            attempts = {c.name: RunSpec.on(c, spec.request, spec.models) for rank in spec.ranks for c in rank}
            signatures = {name: spawn_signature(attempt) for name, attempt in attempts.items()}
            tried: set[str] = set()
            hops = 0
            while True:
                holding = self._holding(history)
                holders = {name for name, signature in signatures.items() if signature in holding}
                credential = self._router.choose(spec.ranks, tried, holders)
                answered_by.set(credential)
                attempt = attempts[credential.name]
                signature = signatures[credential.name]
                parked = self._claim_parked(attempt, signature, history)
                if parked is not None:
                    process, turn = parked
                else:
                    process, turn = await self._begin_turn(attempt, signature, history, admitted)
                self._running.add(process)
                admitted.place(process)
                failure: BaseException | None = None
                held: list[Message] = []  # what came before the answer: nothing the client has seen
                answering = False
                messages = turn.messages()
                try:
                    async for message in messages:
                        if isinstance(message, RateLimitEvent):
                            await self._router.observe(credential, message.rate_limit_info)
                        if not answering:
                            if not _is_answer(message):
                                held.append(message)
                                continue
                            answering = True
                            for earlier in held:
                                yield earlier
                        yield message
                    return
                except GatewayError as error:
                    failure = error
                    moves = (
                        not answering
                        and not self._closing
                        and await self._router.failed(credential, error, hops)
                    )
                    if moves and self._router.has_another(spec.ranks, tried | {credential.name}):
                        logger.info(
                            "Credential %s failed (%s); the request moves on", credential.name, error.code
                        )
                        tried.add(credential.name)
                        hops += 1
                        continue
                    if self._closing:
                        # The process ended because the server is stopping, not because Claude failed.
                        raise ClaudeUnavailableError(
                            "The gateway is shutting down; retry the request.", retry_after=1
                        ) from error
                    raise
                except GeneratorExit:
                    # The caller stopped reading: at the end of an answer that ends before the result (client
                    # function calls, a length cut), or because its client went away. The turn's state tells.
                    raise
                except BaseException as error:
                    failure = error
                    raise
                finally:
                    with anyio.CancelScope(shield=True):
                        await messages.aclose()
                        self._running.discard(process)
                        self._after_turn(process, turn, attempt, signature, failure)

    def _holding(self, history: str) -> set[str]:
        """Signatures of processes holding the conversation (waiting for its results, or idle with it)."""
        parked = self._parked.get(history)
        holding = {parked.signature} if parked is not None else set()
        if history != EMPTY:
            holding |= {entry.signature for entry in self._idle if entry.process.held.whole == history}
        return holding

    async def count_tokens(self, spec: RunSpec) -> int:
        """Counts the input tokens of a request the way Claude Code would send it, without running it."""
        request = spec.request
        whole = replace(request, history=(*request.history, ClaudeTurn("user", request.prompt)))
        credential = self._router.choose(spec.ranks, set())
        process = await self._start_process(RunSpec.on(credential, whole, spec.models))
        try:
            total = await process.context_tokens()
        finally:
            with anyio.CancelScope(shield=True):
                await self._retire(process, running=False)
        if total <= 0:
            raise ClaudeUnavailableError("Claude Code could not count the tokens; see the server log.")
        return total

    # --- choosing a process ---------------------------------------------------------------------

    def _claim_parked(self, spec: RunSpec, signature: str, history: str) -> tuple[ClaudeProcess, Turn] | None:
        parked = self._parked.get(history)
        if parked is None or parked.signature != signature or parked.process.model != spec.request.model:
            return None
        outcomes = tool_outcomes(spec.request.prompt)
        if outcomes is None or set(outcomes) != set(parked.turn.calls):
            return None
        del self._parked[history]
        parked.turn.resume(outcomes)
        self._counts["resumes"] += 1
        return parked.process, parked.turn

    async def _begin_turn(
        self, spec: RunSpec, signature: str, history: str, admitted: AdmittedTurn
    ) -> tuple[ClaudeProcess, Turn]:
        request = spec.request
        # Results for calls no process waits in need a process that replays them (options.claude_prompt).
        reusable = tool_outcomes(request.prompt) is None
        while reusable and (chosen := self._take_idle(signature, history, request.model)) is not None:
            process, keep = chosen
            try:
                self._counts["resets"] += await process.prepare(keep, request.model)
            except ProcessUnusable as why:
                logger.info("A kept Claude process could not be reset (%s); it is retired", why)
                self._spawn_background(self._retire(process, running=True))
                continue
            self._counts["reused"] += 1
            process.raise_priority()
            self._ensure_spare(spec, signature)
            return process, await self._ask(process, spec, history)
        self._ensure_spare(spec, signature)
        admitted.step_aside()
        process = await self._start_process(spec)
        return process, await self._ask(process, spec, process.held.floor)

    async def _ask(self, process: ClaudeProcess, spec: RunSpec, start: str) -> Turn:
        try:
            return await process.ask(spec.request, start)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._retire(process, running=True)
            raise

    def _take_idle(self, signature: str, history: str, model: str) -> tuple[ClaudeProcess, int] | None:
        """The idle process that holds `history` after the fewest rewinds (least recently used first)."""
        best: tuple[int, _Idle, int] | None = None
        for entry in self._idle:
            if entry.signature != signature:
                continue
            held = entry.process.held
            keep = held.keep_for(history)
            if keep is None:
                continue
            rewinds = len(held.exchanges) - keep
            if model != entry.process.model and held.exchanges and rewinds == 0:
                continue  # a model switch would stay in the conversation it continues
            if best is None or rewinds < best[0]:
                best = (rewinds, entry, keep)
        if best is None:
            return None
        self._idle.remove(best[1])
        return best[1].process, best[2]

    # --- after a turn ---------------------------------------------------------------------------

    def _after_turn(
        self,
        process: ClaudeProcess,
        turn: Turn,
        spec: RunSpec,
        signature: str,
        failure: BaseException | None,
    ) -> None:
        if process.turns <= 2 or process.turns % MEASURE_EVERY_TURNS == 0:
            self._measure(process)
        request = spec.request
        said = (*request.history, ClaudeTurn("user", request.prompt))
        if failure is None and turn.state == "awaiting_tools" and turn.reply is not None and process.alive:
            self._begin_exchange(process, turn)
            key = fingerprint((*said, turn.reply))
            deadline = time.monotonic() + self._settings.tool_call_timeout
            stale = self._parked.pop(key, None)
            if stale is not None:
                self._spawn_background(self._retire(stale.process, running=True))
            self._parked[key] = _Parked(process, turn, signature, deadline)
            self._counts["parks"] += 1
            return
        if turn.state == "answered" and process.alive and turn.prompt_uuid is not None:
            self._begin_exchange(process, turn)
            process.held.settle(None if turn.reply is None else fingerprint((*said, turn.reply)))
            self._keep(process, signature)
            return
        if (isinstance(failure, GatewayError) and turn.state != "failed") or not process.alive:
            # A deadline passed or the process broke: it cannot be trusted to wind down.
            process.terminate()
            self._spawn_background(self._retire(process, running=True))
            return
        # The client left, the answer was cut where Claude Code would go on, or Claude failed: stop
        # the turn and take it out of the conversation; the process serves the next request.
        self._spawn_background(self._recover(process, turn, signature))

    def _begin_exchange(self, process: ClaudeProcess, turn: Turn) -> None:
        exchanges = process.held.exchanges
        if turn.prompt_uuid is not None and not (exchanges and exchanges[-1].prompt_uuid == turn.prompt_uuid):
            process.held.begin(turn.prompt_uuid, turn.start)

    async def _recover(self, process: ClaudeProcess, turn: Turn, signature: str) -> None:
        try:
            with anyio.fail_after(RECOVERY_SECONDS):
                if turn.state == "running":
                    await process.interrupt()
                    await _wind_down(process, turn)
                exchanges = process.held.exchanges
                if exchanges and exchanges[-1].prompt_uuid == turn.prompt_uuid:
                    self._counts["resets"] += await process.prepare(len(exchanges) - 1, process.model)
                elif turn.prompt_uuid is not None:
                    await process.rewind_prompt(turn.prompt_uuid)
                    self._counts["resets"] += 1
                else:
                    raise ProcessUnusable("the turn's prompt was never seen")
        except (ProcessUnusable, TimeoutError, GatewayError) as why:
            logger.info("A Claude process could not be recovered after a turn (%s); it is ended", why)
            await self._retire(process, running=True)
            return
        self._keep(process, signature)

    def _keep(self, process: ClaudeProcess, signature: str) -> None:
        if self._settings.warm_processes > 0 and not self._closing:
            self._idle.append(_Idle(process, signature))
        else:
            self._spawn_background(self._retire(process, running=False))

    def _ensure_spare(self, spec: RunSpec, signature: str) -> None:
        """Starts fresh processes, at low priority, for the next requests like this one while none is idle."""
        starting = self._spares_starting.get(signature, 0)
        if any(entry.signature == signature for entry in self._idle):
            return
        if self._settings.warm_processes <= starting or self._limit.full:
            return
        self._limit.take()
        self._spares_starting[signature] = starting + 1
        fresh = replace(spec, request=replace(spec.request, history=(), prompt=()))
        self._spawn_background(self._start_spare(fresh, signature), cancellable=True)

    async def _start_spare(self, spec: RunSpec, signature: str) -> None:
        try:
            process = await self._spawn(spec, spare=True)
        except Exception:
            logger.warning("A spare Claude process could not be started", exc_info=True)
            await self._limit.release()
            return
        finally:
            # Counted as starting until warmed up, so that no second spare starts meanwhile.
            self._spares_starting[signature] -= 1
        self._measure(process)
        self._keep(process, signature)

    async def _reap(self) -> None:
        """Retires idle processes past WARM_IDLE_SECONDS or while memory is short, and waiting ones past
        TOOL_CALL_TIMEOUT; follows the memory free now."""
        while True:
            await asyncio.sleep(REAP_INTERVAL_SECONDS)
            now = time.monotonic()
            for key, parked in list(self._parked.items()):
                if parked.deadline < now:
                    del self._parked[key]
                    await self._retire(parked.process, running=True)
            cutoff = now - self._settings.warm_idle_seconds
            for entry in [e for e in self._idle if e.since < cutoff]:
                self._idle.remove(entry)
                await self._retire(entry.process, running=False)
            while self._idle and self._limit.memory_short():
                entry = self._idle.pop(0)
                await self._retire(entry.process, running=False)
            self._follow_memory()

    # --- starting and retiring processes under the limit (capacity.py) ------------------------

    async def _start_process(self, spec: RunSpec) -> ClaudeProcess:
        await self._limit.acquire(self._retire_least_recently_used)
        try:
            return await self._spawn(spec)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._limit.release()
            raise

    async def _spawn(self, spec: RunSpec, *, spare: bool = False) -> ClaudeProcess:
        """A new process; a spare starts at low priority and is taken through its first prompt without
        an upstream request (`warm_up`), counted as starting until then."""
        # Starting Claude Code takes a core for a few hundred milliseconds: a burst started all at
        # once would make every request wait for all the others.
        async with self._starting:
            self._counts["started"] += 1
            self._starting_now += 1
            try:
                process = await ClaudeProcess.spawn(spec, self._settings, *self._paths(), low_priority=spare)
                if spare:
                    await _warm_up(process)
                return process
            finally:
                self._starting_now -= 1

    def _retire_least_recently_used(self) -> bool:
        """Makes room under the limit: the least recently used idle process goes, its place passing on."""
        if not self._idle:
            return False
        entry = self._idle.pop(0)
        self._spawn_background(entry.process.stop(running=False))
        return True

    async def _retire(self, process: ClaudeProcess, *, running: bool) -> None:
        await process.stop(running=running)
        await self._limit.release()

    def _measure(self, process: ClaudeProcess) -> None:
        """Follows the largest process seen; the limit follows it unless MAX_CLAUDE_PROCESSES is set."""
        if self._limit.measured(process.resident_bytes()):
            self._spawn_background(self._limit.wake_waiters())

    def _follow_memory(self) -> None:
        if self._limit.follow_memory():
            self._spawn_background(self._limit.wake_waiters())

    def _paths(self) -> tuple[Path, Path]:
        if self._launcher_path is None or self._runtime_dir is None:
            raise RuntimeError("ClaudeRunner.start() was not called")
        return self._launcher_path, self._runtime_dir

    def _spawn_background(self, coroutine: Coroutine[Any, Any, None], *, cancellable: bool = False) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if cancellable:
            self._cancellable.add(task)
            task.add_done_callback(self._cancellable.discard)


async def _warm_up(process: ClaudeProcess) -> None:
    try:
        await process.warm_up()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await process.stop(running=True)
        raise


async def _wind_down(process: ClaudeProcess, turn: Turn) -> None:
    """Reads an interrupted turn to its end, learning its prompt's uuid if it was not seen yet."""
    while True:
        message = await process.next_message(RECOVERY_SECONDS)
        if isinstance(message, ProcessEnded):
            raise ProcessUnusable("the process ended")
        if (
            turn.prompt_uuid is None
            and isinstance(message, UserMessage)
            and message.parent_tool_use_id is None
        ):
            turn.prompt_uuid = message.uuid
        if isinstance(message, ResultMessage):
            return


def _is_answer(message: Message) -> bool:
    """Whether a message is part of the answer the client reads (from then on, no credential change)."""
    if isinstance(message, StreamEvent):
        return message.event.get("type") not in (None, "ping")
    if isinstance(message, AssistantMessage):
        return message.model != "<synthetic>"
    return isinstance(message, ResultMessage)
