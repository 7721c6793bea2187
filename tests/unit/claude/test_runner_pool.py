"""The runner's process limit before any process is measured, and its reaper when memory runs short."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from claude_code_api.claude import capacity as capacity_module
from claude_code_api.claude import runner as runner_module
from claude_code_api.claude.capacity import ASSUMED_PROCESS_BYTES, MEMORY_RESERVE_PROCESSES, MEMORY_SHARE
from claude_code_api.claude.runner import ClaudeRunner, _Idle
from claude_code_api.config import load_settings

GIB = 2**30


def _memory_limit(free: int) -> int:
    return max(1, int(free * MEMORY_SHARE // ASSUMED_PROCESS_BYTES))


def test_the_first_limit_comes_from_the_memory_free_at_start(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, max_claude_processes=None)
    before = capacity_module.available_memory()
    limit = ClaudeRunner(settings).stats().process_limit
    after = capacity_module.available_memory()

    # No process has been measured: the limit is the memory-derived one, not a provisional four.
    assert _memory_limit(min(before, after)) <= limit <= _memory_limit(max(before, after))
    if before >= 2 * GIB:  # what any machine that runs the test suite has free
        assert limit > 4


def test_the_first_limit_follows_the_assumed_process_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capacity_module, "available_memory", lambda: 6 * GIB)
    runner = ClaudeRunner(load_settings(data_dir=tmp_path, max_claude_processes=None))

    assert runner.stats().process_limit == int(6 * GIB * MEMORY_SHARE // ASSUMED_PROCESS_BYTES) == 16


def test_little_memory_still_allows_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity_module, "available_memory", lambda: 10 * 2**20)
    runner = ClaudeRunner(load_settings(data_dir=tmp_path, max_claude_processes=None))

    assert runner.stats().process_limit == 1


def test_max_claude_processes_sets_the_limit_whatever_the_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capacity_module, "available_memory", lambda: 64 * GIB)
    runner = ClaudeRunner(load_settings(data_dir=tmp_path, max_claude_processes=3))

    assert runner.stats().process_limit == 3
    runner._follow_memory()  # what the reaper does every few seconds
    assert runner.stats().process_limit == 3


# --- the reaper ------------------------------------------------------------------------------------


class _FakeProcess:
    def __init__(self, name: str, stopped: list[str]) -> None:
        self.name = name
        self._stopped = stopped

    async def stop(self, *, running: bool) -> None:
        assert not running
        self._stopped.append(self.name)


async def test_the_reaper_retires_idle_processes_least_recently_used_first_while_memory_is_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []
    reserve = ASSUMED_PROCESS_BYTES * MEMORY_RESERVE_PROCESSES
    # Each retired process gives its memory back; 2.5 processes' worth is missing below the reserve.
    monkeypatch.setattr(
        capacity_module,
        "available_memory",
        lambda: reserve - int(2.5 * ASSUMED_PROCESS_BYTES) + len(stopped) * ASSUMED_PROCESS_BYTES,
    )
    monkeypatch.setattr(runner_module, "REAP_INTERVAL_SECONDS", 0.01)
    runner = ClaudeRunner(load_settings(data_dir=tmp_path, warm_idle_seconds=3600, max_claude_processes=None))
    now = time.monotonic()
    for age, name in enumerate(["oldest", "older", "old", "recent", "newest"]):
        entry = _Idle(_FakeProcess(name, stopped), "signature", since=now + age)  # type: ignore[arg-type]
        runner._idle.append(entry)
        runner._limit.live += 1

    reaper = asyncio.ensure_future(runner._reap())
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(stopped) >= 3 and runner._limit.live == 2:
                break
        await asyncio.sleep(0.05)  # a few more rounds: nothing more goes once memory is back
    finally:
        reaper.cancel()

    assert stopped == ["oldest", "older", "old"]
    assert [entry.process.name for entry in runner._idle] == ["recent", "newest"]  # type: ignore[attr-defined]
    stats = runner.stats()
    assert (stats.idle, stats.running, stats.parked) == (2, 0, 0)
    assert runner._limit.live == 2


async def test_the_reaper_keeps_idle_processes_while_memory_is_plentiful(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(capacity_module, "available_memory", lambda: 64 * GIB)
    monkeypatch.setattr(runner_module, "REAP_INTERVAL_SECONDS", 0.01)
    runner = ClaudeRunner(load_settings(data_dir=tmp_path, warm_idle_seconds=3600, max_claude_processes=None))
    for name in ("a", "b"):
        runner._idle.append(_Idle(_FakeProcess(name, stopped), "signature"))  # type: ignore[arg-type]
        runner._limit.live += 1

    reaper = asyncio.ensure_future(runner._reap())
    await asyncio.sleep(0.1)
    reaper.cancel()

    assert stopped == []
    assert runner.stats().idle == 2
