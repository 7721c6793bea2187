"""When a turn may start: live Claude Code processes share the machine's cores.

A turn costs its process tens of milliseconds of CPU to build the upstream request and to read the
answer, and nothing while it waits for the upstream. Turns that want a CPU beyond a couple per core add
only switching: measured on 2 cores against a mock upstream that answers at once, 16 clients in a
closed loop got 0.3-0.65x the answers 4 clients got; admitted as below, 1.05-1.15x.

So turns are counted by how much they want a CPU: each by the share of its time so far its process
ran or waited to run (the kernel's schedstat; all of it in its first milliseconds, while it builds the
upstream request). A turn starts at once while that sum is under the limit (2 per core), and
otherwise waits, first come first served, until it is. A turn against the mock wants the CPU most of
its time and counts nearly 1; one that waits a second for a real upstream counts a few hundredths, so
dozens of those run before anyone waits (measured: with the mock a second slow to answer, 16 clients got
the same answers with and without this). Where the kernel does not say (no /proc), turns count nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# How often waiting turns look again when no turn has ended: processes leave the CPU without telling.
RECHECK_SECONDS = 0.005
# A turn younger than this wants a CPU (it is building its request); after it, its share decides.
FIRST_MILLISECONDS_NS = 10_000_000


class CpuAccounted(Protocol):
    """A process that can say how long it has run or waited to run, in nanoseconds (None: unknown)."""

    def cpu_wanted_ns(self) -> int | None: ...


@dataclass(eq=False)
class _Placed:
    process: CpuAccounted
    since_ns: int
    wanted_ns: int | None

    def wanting(self, now_ns: int) -> float:
        """The share of the turn so far its process ran or waited to run (all of it at first)."""
        if self.wanted_ns is None:
            return 0.0
        elapsed = now_ns - self.since_ns
        if elapsed < FIRST_MILLISECONDS_NS:
            return 1.0
        wanted = self.process.cpu_wanted_ns()
        return 0.0 if wanted is None else min(1.0, (wanted - self.wanted_ns) / elapsed)


class AdmittedTurn:
    """A turn let in: counted as wanting a CPU until it is placed in a process, then as its process
    does, and not at all while a process starts for it (the start limit counts those)."""

    def __init__(self, admission: TurnAdmission) -> None:
        self._admission = admission
        self._placed: _Placed | None = None
        self._unplaced = True

    def place(self, process: CpuAccounted) -> None:
        """The process that runs the turn from now on."""
        self._leave()
        self._placed = _Placed(process, self._admission.clock(), process.cpu_wanted_ns())
        self._admission._placed.append(self._placed)

    def step_aside(self) -> None:
        """A process starts for the turn: it waits for that, not for a CPU, until it is placed."""
        self._leave()
        self._admission._changed.set()

    def _leave(self) -> None:
        if self._unplaced:
            self._unplaced = False
            self._admission._unplaced -= 1
        if self._placed is not None:
            self._admission._placed.remove(self._placed)
            self._placed = None


class TurnAdmission:
    """Admits turns while fewer than `limit` want a CPU; the rest wait in arrival order."""

    def __init__(self, limit: float, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._limit = limit
        self.clock = clock
        self._unplaced = 0  # admitted, not in a process yet (choosing or resetting one)
        self._placed: list[_Placed] = []  # oldest first
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._changed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self.waited = 0

    @property
    def waiting(self) -> int:
        """Turns waiting for a CPU now."""
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[AdmittedTurn]:
        """Waits until the turn may start; the turn ends with the context."""
        await self._admit()
        admitted = AdmittedTurn(self)
        try:
            yield admitted
        finally:
            admitted._leave()
            self._changed.set()

    def _has_room(self) -> bool:
        """Whether one more turn (counted 1 until it is in a process) keeps the turns admitted within the
        limit, each counted by the share of its time its process wanted a CPU."""
        most = self._limit - 1
        busy: float = self._unplaced
        if busy + len(self._placed) <= most:
            return True  # few enough turns, whatever they want
        now = self.clock()
        for placed in reversed(self._placed):  # the youngest are the likeliest to want a CPU
            busy += placed.wanting(now)
            if busy > most:
                return False
        return busy <= most

    async def _admit(self) -> None:
        if not self._waiting and self._has_room():
            self._unplaced += 1
            return
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._admit_waiting())
        try:
            await admitted
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled():
                self._unplaced -= 1  # admitted as its request went away: the place passes on
                self._changed.set()
            else:
                self._waiting.remove(admitted)
            raise
        self.waited += 1

    async def _admit_waiting(self) -> None:
        try:
            while self._waiting:
                self._changed.clear()
                while self._waiting and self._has_room():
                    self._unplaced += 1
                    self._waiting.popleft().set_result(None)
                if self._waiting:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(RECHECK_SECONDS):
                            await self._changed.wait()
        finally:
            self._pump = None


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, or fewer under a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores
