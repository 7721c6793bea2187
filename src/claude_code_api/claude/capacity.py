"""How many Claude Code processes may live at once: running, idle, waiting and starting together.

The limit comes from the memory free now and the size of the largest process measured so far (or
MAX_CLAUDE_PROCESSES), and follows both: it grows when memory frees up and shrinks when a process is
found larger. A request past it waits up to QUEUE_TIMEOUT for a place, then gets a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from claude_code_api.claude.memory import available_memory
from claude_code_api.errors import RateLimitError

logger = logging.getLogger(__name__)

# Share of the memory free for Claude processes that they may take when no limit is set.
MEMORY_SHARE = 0.7
# What a process is assumed to take until one has been measured (measured: ~180-210 MB).
ASSUMED_PROCESS_BYTES = 256 * 2**20
# Idle processes go, least recently used first, while less memory than this many processes is free.
MEMORY_RESERVE_PROCESSES = 4
QUEUE_RETRY_AFTER_SECONDS = 5.0


class ProcessLimit:
    """Places for live processes under a limit; `live` counts the places taken."""

    def __init__(self, fixed: int | None, queue_timeout: float) -> None:
        self._fixed = fixed
        self._queue_timeout = queue_timeout
        self._largest_process = ASSUMED_PROCESS_BYTES
        self._freed = asyncio.Condition()
        self.live = 0
        self.waiting = 0
        self.limit = fixed or self._limit_for(available_memory())

    @property
    def full(self) -> bool:
        return self.live >= self.limit

    def take(self) -> None:
        """Takes a place that is known to be free (a spare checks `full` first)."""
        self.live += 1

    async def acquire(self, make_room: Callable[[], bool]) -> None:
        """Takes a place, or the one `make_room` frees (an idle process retired for it), or waits for
        one up to the queue timeout; then raises RateLimitError."""
        deadline = time.monotonic() + self._queue_timeout
        self.waiting += 1
        try:
            while True:
                if self.live < self.limit:
                    self.live += 1
                    return
                if make_room():
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RateLimitError(
                        f"All {self.limit} Claude processes of this gateway are busy and the "
                        f"request waited {self._queue_timeout:g} s; retry shortly.",
                        retry_after=QUEUE_RETRY_AFTER_SECONDS,
                    )
                async with self._freed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(remaining):
                            await self._freed.wait()
        finally:
            self.waiting -= 1

    async def release(self) -> None:
        self.live -= 1
        async with self._freed:
            self._freed.notify()

    def memory_short(self) -> bool:
        """Whether less memory is free than MEMORY_RESERVE_PROCESSES processes take."""
        return available_memory() < self._largest_process * MEMORY_RESERVE_PROCESSES

    def measured(self, size: int | None) -> bool:
        """Follows the largest process seen; True when the limit grew (wake the waiters)."""
        if size is None or size <= self._largest_process:
            return False
        self._largest_process = size
        logger.info("A Claude process takes %.0f MB", size / 2**20)
        return self.follow_memory()

    def follow_memory(self) -> bool:
        """The limit from the memory free now plus what the live processes hold, unless it is fixed;
        True when it grew (wake the waiters)."""
        if self._fixed is not None:
            return False
        limit = self._limit_for(available_memory() + self.live * self._largest_process)
        grew = limit > self.limit
        self.limit = limit
        return grew

    async def wake_waiters(self) -> None:
        async with self._freed:
            self._freed.notify_all()

    def _limit_for(self, free: int) -> int:
        return max(1, int(free * MEMORY_SHARE // self._largest_process))
