"""Which Claude Code process answers a request: a warm one, one that already holds the conversation, or
a new one; and how many may live at once.

Starting Claude Code costs a few hundred milliseconds, so processes are kept: a spare started ahead of
need for each recently used combination of key token and options, and, after a plain answer, the
process that gave it, which already holds the conversation and can take the next turn without a replay.
A process is only ever reused for the same OAuth token, the same spawn-time options and the exact
conversation it holds; anything else gets a new process that replays the history. A global limit,
derived from the measured memory of a process unless set, bounds them all; requests past it wait in a
queue, and past the queue's timeout get a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import orjson
import psutil
from claude_agent_sdk import Message

from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import ClaudeTurn
from claude_code_api.claude import launcher
from claude_code_api.claude.process import ClaudeProcess, Turn
from claude_code_api.config import Settings
from claude_code_api.errors import ClaudeUnavailableError, GatewayError, RateLimitError
from claude_code_api.runtime_dirs import create_runtime_dir

logger = logging.getLogger(__name__)

__all__ = ["ClaudeRunner", "RunSpec", "RunnerStats"]

# Share of the memory available at start that Claude processes may take when no limit is set.
MEMORY_SHARE = 0.7
# The limit in force until the first process has been measured.
PROVISIONAL_PROCESS_LIMIT = 4
REAP_INTERVAL_SECONDS = 5.0
QUEUE_RETRY_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class RunnerStats:
    """The runner's processes at one moment, for health and metrics."""

    running: int
    warm_idle: int
    queued: int
    process_limit: int
    started: int


def spawn_signature(spec: RunSpec) -> str:
    """What a process is started with and cannot change later: its token and its options."""
    request = spec.request
    fixed = {
        "token": spec.oauth_token,
        "model": request.model,
        "system": request.system_prompt,
        "max_output_tokens": request.max_output_tokens,
        "effort": request.effort,
        "thinking": request.thinking,
        "tools": [(t.name, t.description, t.input_schema) for t in request.client_tools],
        "output_schema": request.output_schema,
    }
    return hashlib.sha256(orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS)).hexdigest()


def conversation_fingerprint(turns: Iterable[ClaudeTurn]) -> str:
    """A digest of a conversation, equal only for the exact same turns."""
    plain = [(turn.role, list(turn.content)) for turn in turns]
    return hashlib.sha256(orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)).hexdigest()


EMPTY_CONVERSATION = conversation_fingerprint(())


def available_memory() -> int:
    """Memory free for Claude processes: the machine's, or less under a container's memory limit."""
    available = int(psutil.virtual_memory().available)
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit():
            available = min(available, max(0, int(limit) - usage))
        break
    return available


@dataclass(eq=False)
class _Idle:
    process: ClaudeProcess
    signature: str
    conversation: str
    since: float = field(default_factory=time.monotonic)


class ClaudeRunner:
    """Serves requests from warm or new Claude Code processes within a global limit."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runtime_dir: Path | None = None
        self._launcher_path: Path | None = None
        self._idle: list[_Idle] = []
        self._running: set[ClaudeProcess] = set()
        self._live = 0  # running + idle + starting: what the limit counts
        self._waiters = 0
        self._slot_freed = asyncio.Condition()
        self._process_limit = settings.max_claude_processes or PROVISIONAL_PROCESS_LIMIT
        self._largest_process = 0
        self._memory_at_start = available_memory()
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._cancellable: set[asyncio.Task[None]] = set()
        self._spares_starting: dict[str, int] = {}
        self._started = 0
        self._starting = asyncio.Semaphore(max(2, os.cpu_count() or 2))

    @property
    def active_runs(self) -> int:
        """How many Claude processes are answering now."""
        return len(self._running)

    def stats(self) -> RunnerStats:
        """Counts of running, idle and queued processes, and the limit on them."""
        return RunnerStats(
            running=len(self._running),
            warm_idle=len(self._idle),
            queued=self._waiters,
            process_limit=self._process_limit,
            started=self._started,
        )

    def start(self) -> None:
        """Creates the runtime directory and the launcher, and starts the idle reaper."""
        base = self._settings.run_dir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        self._runtime_dir = create_runtime_dir(base)
        self._launcher_path = self._runtime_dir / "claude-launcher"
        source = Path(launcher.__file__).read_text()
        self._launcher_path.write_text(f"#!{sys.executable} -IS\n{source}")
        self._launcher_path.chmod(0o700)
        self._spawn_background(self._reap_idle(), cancellable=True)

    async def aclose(self) -> None:
        """Ends every Claude process, running or idle, and removes the runtime directory."""
        self.end_running_answers()
        # The reaper and spares still starting are cancelled (a spare cancelled while it starts stops
        # itself); processes being stopped are waited for.
        for task in self._cancellable:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        idle, self._idle = self._idle, []
        # Signalled rather than asked to finish: a stopping server has no seconds to spare.
        await asyncio.gather(*(entry.process.stop(running=True) for entry in idle))
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
        """Has Claude answer one request and yields its messages up to the result.

        On leaving the context, however the run ended, its process is either idle with a known
        conversation or gone.
        """
        signature = spawn_signature(spec)
        process = self._take_idle(signature, conversation_fingerprint(spec.request.history))
        if process is None:
            process = await self._start_process(spec)
        self._running.add(process)
        self._ensure_spare(spec, signature)
        turn: Turn | None = None
        try:
            turn = await process.ask(spec.request)
            messages = turn.messages()
            try:
                yield messages
            except GatewayError as error:
                if self._closing:
                    # The process ended because the server is stopping, not because Claude failed.
                    raise ClaudeUnavailableError(
                        "The gateway is shutting down; retry the request.", retry_after=1
                    ) from error
                raise
            finally:
                await messages.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                self._running.discard(process)
                await self._after_turn(process, spec, signature, turn)

    async def count_tokens(self, spec: RunSpec) -> int:
        """Counts the input tokens of a request the way Claude Code would send it, without running it."""
        request = spec.request
        whole = replace(request, history=(*request.history, ClaudeTurn("user", request.prompt)))
        process = await self._start_process(RunSpec(spec.oauth_token, whole))
        try:
            return await process.context_tokens()
        finally:
            with anyio.CancelScope(shield=True):
                await self._retire(process, running=False)

    # --- keeping processes ----------------------------------------------------------------------

    @property
    def _keeps_processes(self) -> bool:
        return self._settings.warm_processes > 0

    def _take_idle(self, signature: str, conversation: str) -> ClaudeProcess | None:
        for entry in self._idle:
            if entry.signature == signature and entry.conversation == conversation:
                self._idle.remove(entry)
                return entry.process
        return None

    async def _after_turn(
        self, process: ClaudeProcess, spec: RunSpec, signature: str, turn: Turn | None
    ) -> None:
        self._measure(process)
        answer = turn.answer if turn is not None and turn.completed else None
        if answer and self._keeps_processes:
            # The process now holds the history, the prompt and its answer: the next turn's history.
            request = spec.request
            held = (
                *request.history,
                ClaudeTurn("user", request.prompt),
                ClaudeTurn("assistant", ({"type": "text", "text": answer},)),
            )
            self._idle.append(_Idle(process, signature, conversation_fingerprint(held)))
            return
        running = turn is None or not turn.completed
        if running:
            process.terminate()  # at once: a cancelled answer must not go on upstream
        # Reaping the process need not delay the response.
        self._spawn_background(self._retire(process, running=running))

    def _ensure_spare(self, spec: RunSpec, signature: str) -> None:
        """Starts a fresh process for the next request like this one, when there is room for it."""
        if not self._keeps_processes:
            return
        spares = sum(
            1 for e in self._idle if e.signature == signature and e.conversation == EMPTY_CONVERSATION
        )
        spares += self._spares_starting.get(signature, 0)
        if spares >= self._settings.warm_processes:
            return
        if self._live >= self._process_limit:
            # A spare serves any new conversation; a kept one only its own next turn. At the limit,
            # the conversation idle longest makes room, so new conversations do not all start cold.
            kept = [e for e in self._idle if e.conversation != EMPTY_CONVERSATION]
            if not kept:
                return
            oldest = min(kept, key=lambda e: e.since)
            self._idle.remove(oldest)
            self._spawn_background(oldest.process.stop(running=True))
        else:
            self._live += 1
        fresh = RunSpec(spec.oauth_token, replace(spec.request, history=()))
        self._spares_starting[signature] = self._spares_starting.get(signature, 0) + 1
        self._spawn_background(self._start_spare(fresh, signature), cancellable=True)

    async def _start_spare(self, spec: RunSpec, signature: str) -> None:
        try:
            process = await self._spawn(spec)
        except Exception:
            logger.warning("A warm Claude process could not be started", exc_info=True)
            await self._release_slot()
            return
        finally:
            self._spares_starting[signature] -= 1
        self._measure(process)
        self._idle.append(_Idle(process, signature, EMPTY_CONVERSATION))

    async def _reap_idle(self) -> None:
        """Retires processes idle for longer than WARM_IDLE_SECONDS."""
        interval = min(REAP_INTERVAL_SECONDS, self._settings.warm_idle_seconds / 2)
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self._settings.warm_idle_seconds
            for entry in [e for e in self._idle if e.since < cutoff]:
                self._idle.remove(entry)
                await self._retire(entry.process, running=False)

    # --- the global limit -----------------------------------------------------------------------

    async def _start_process(self, spec: RunSpec) -> ClaudeProcess:
        await self._acquire_slot()
        try:
            return await self._spawn(spec)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._release_slot()
            raise

    async def _spawn(self, spec: RunSpec) -> ClaudeProcess:
        # Starting Claude Code takes a core for a few hundred milliseconds: a burst started all at
        # once would make every request wait for all the others.
        async with self._starting:
            self._started += 1
            return await ClaudeProcess.spawn(spec, self._settings, *self._paths())

    async def _acquire_slot(self) -> None:
        """Takes a place under the process limit, retiring an idle process or waiting when needed."""
        deadline = time.monotonic() + self._settings.queue_timeout
        self._waiters += 1
        try:
            while True:
                if self._live < self._process_limit:
                    self._live += 1
                    return
                if self._idle:
                    # The oldest idle process makes room; its place passes to this request.
                    entry = min(self._idle, key=lambda e: e.since)
                    self._idle.remove(entry)
                    self._spawn_background(entry.process.stop(running=False))
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RateLimitError(
                        f"All {self._process_limit} Claude processes of this gateway are busy and the "
                        f"request waited {self._settings.queue_timeout:g} s; retry shortly.",
                        retry_after=QUEUE_RETRY_AFTER_SECONDS,
                    )
                async with self._slot_freed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(remaining):
                            await self._slot_freed.wait()
        finally:
            self._waiters -= 1

    async def _release_slot(self) -> None:
        self._live -= 1
        async with self._slot_freed:
            self._slot_freed.notify()

    async def _wake_waiters(self) -> None:
        async with self._slot_freed:
            self._slot_freed.notify_all()

    async def _retire(self, process: ClaudeProcess, *, running: bool) -> None:
        await process.stop(running=running)
        await self._release_slot()

    def _measure(self, process: ClaudeProcess) -> None:
        """Derives the process limit from the largest process seen, unless MAX_CLAUDE_PROCESSES is set."""
        size = process.resident_bytes()
        if size is None or size <= self._largest_process:
            return
        self._largest_process = size
        if self._settings.max_claude_processes is None:
            budget = self._memory_at_start * MEMORY_SHARE
            raised = max(1, int(budget // size)) > self._process_limit
            self._process_limit = max(1, int(budget // size))
            if raised:
                self._spawn_background(self._wake_waiters())
            logger.info(
                "A Claude process takes %.0f MB: at most %d at once", size / 2**20, self._process_limit
            )

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
