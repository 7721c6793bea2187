"""Turns start while the turns running want less than the limit of CPUs; the rest wait in order."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

import pytest

from claude_code_api.claude.admission import FIRST_MILLISECONDS_NS, AdmittedTurn, TurnAdmission, usable_cores

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class FakeProcess:
    """A process whose run-or-runnable time the test sets."""

    def __init__(self, wanted: int | None = 0) -> None:
        self.wanted = wanted

    def cpu_wanted_ns(self) -> int | None:
        return self.wanted


class Turns:
    """Turns held open inside the admission until the test ends them."""

    def __init__(self, admission: TurnAdmission) -> None:
        self.admission = admission
        self.started: list[str] = []
        self.admitted: dict[str, AdmittedTurn] = {}
        self._ends: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def begin(self, name: str) -> asyncio.Task[None]:
        self._ends[name] = asyncio.Event()
        self._tasks[name] = asyncio.ensure_future(self._run(name))
        return self._tasks[name]

    async def _run(self, name: str) -> None:
        async with self.admission.turn() as admitted:
            self.started.append(name)
            self.admitted[name] = admitted
            await self._ends[name].wait()

    async def end(self, name: str) -> None:
        self._ends[name].set()
        await self._tasks[name]
        await settle()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def admission(limit: float) -> AsyncIterator[tuple[TurnAdmission, Turns, Clock]]:
    clock = Clock()
    gate = TurnAdmission(limit, clock=clock)
    turns = Turns(gate)
    try:
        yield gate, turns, clock
    finally:
        for task in turns._tasks.values():
            task.cancel()
        await asyncio.gather(*turns._tasks.values(), return_exceptions=True)


async def test_turns_under_the_limit_start_at_once_and_the_next_waits_for_one_to_end() -> None:
    async with admission(2) as (gate, turns, _):
        for name in "ab":
            turns.begin(name)
            await settle()
            turns.admitted[name].place(FakeProcess())
        turns.begin("c")
        turns.begin("d")
        await settle()
        assert turns.started == ["a", "b"]
        assert gate.waiting == 2
        await turns.end("b")
        await asyncio.sleep(0.02)
        assert turns.started == ["a", "b", "c"]
        await turns.end("a")
        await asyncio.sleep(0.02)
        assert turns.started == ["a", "b", "c", "d"]
        assert gate.waiting == 0
        assert gate.waited == 2


async def test_a_turn_counts_by_the_share_of_its_time_its_process_wanted_a_cpu() -> None:
    async with admission(2) as (_, turns, clock):
        processes = {"a": FakeProcess(), "b": FakeProcess()}
        for name, process in processes.items():
            turns.begin(name)
            await settle()
            turns.admitted[name].place(process)
        turns.begin("c")
        await settle()
        assert "c" not in turns.started  # two turns in their first milliseconds count 1 each
        clock.now = 100 * MS
        for process in processes.values():
            process.wanted = 30 * MS  # 0.3 each: 0.6 of 2, room for one more
        await asyncio.sleep(0.02)
        assert turns.started == ["a", "b", "c"]
        turns.admitted["c"].place(FakeProcess())
        turns.begin("d")
        await asyncio.sleep(0.02)
        assert "d" not in turns.started  # c is in its first milliseconds: 1.6
        clock.now += FIRST_MILLISECONDS_NS
        await asyncio.sleep(0.02)
        assert "d" in turns.started  # c wanted nothing since it was placed: 0.55


async def test_a_turn_placed_in_a_process_whose_time_is_unknown_counts_nothing() -> None:
    async with admission(1) as (_, turns, _):
        turns.begin("a")
        await settle()
        turns.admitted["a"].place(FakeProcess(wanted=None))
        turns.begin("b")
        await settle()
        assert turns.started == ["a", "b"]


async def test_a_turn_admitted_but_not_placed_counts_fully_until_it_steps_aside_for_a_start() -> None:
    async with admission(1) as (_, turns, _):
        turns.begin("a")
        turns.begin("b")
        await settle()
        assert turns.started == ["a"]
        turns.admitted["a"].step_aside()
        await asyncio.sleep(0.02)
        assert turns.started == ["a", "b"]


async def test_a_waiting_turn_that_goes_away_leaves_its_place_in_line_to_the_next() -> None:
    async with admission(1) as (gate, turns, _):
        turns.begin("a")
        await settle()
        turns.admitted["a"].place(FakeProcess())
        gone = turns.begin("b")
        turns.begin("c")
        await settle()
        gone.cancel()
        await settle()
        assert gate.waiting == 1
        await turns.end("a")
        await asyncio.sleep(0.02)
        assert turns.started == ["a", "c"]


async def test_a_turn_admitted_as_it_goes_away_gives_its_place_back() -> None:
    async with admission(1) as (gate, turns, _):
        turns.begin("a")
        await settle()
        turns.admitted["a"].place(FakeProcess())
        gone = turns.begin("b")
        await settle()
        await turns.end("a")  # b is admitted ...
        gone.cancel()  # ... and cancelled before it runs
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        turns.begin("c")
        await settle()
        assert "c" in turns.started
        assert gate.waiting == 0


async def test_without_a_limit_no_turn_waits() -> None:
    async with admission(math.inf) as (gate, turns, _):
        for name in "abcdefgh":
            turns.begin(name)
            await settle()
            turns.admitted[name].place(FakeProcess())
        assert turns.started == list("abcdefgh")
        assert gate.waited == 0


def test_usable_cores_is_at_least_one() -> None:
    assert usable_cores() >= 1


@pytest.fixture(autouse=True)
def _quick_rechecks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("claude_code_api.claude.admission.RECHECK_SECONDS", 0.001)
