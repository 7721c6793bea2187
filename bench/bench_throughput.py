"""New conversations per second and time to first token: the gateway against its two floors, as ratios.

One mock upstream (answering at once, TCP_NODELAY), three subjects measured in the same run:
  gateway      `POST /v1/chat/completions`, streamed, on a gateway with its default settings
  new process  claude-agent-sdk `query()` per request, with the runner's options and environment
  kept client  one `ClaudeSDKClient` per client, kept for the whole run: after each conversation it
               rewinds it (`rewind_conversation` control requests, last user message first, uuids from
               `--replay-user-messages`), so the next one starts empty. This is the floor the gateway's
               pool of live processes aims at.

Latency (one client): TTFT of `--runs` new one-message conversations, and of turns 2..5 of
`--runs`/4 conversations (not for the new process: it keeps nothing to continue). Throughput: for each
level of `--levels`, every subject in turn runs that many clients in a closed loop of new one-message
conversations, `--warmup` seconds unmeasured (for the gateway, longer while its pool still grows), then
`--duration` seconds measured. For the gateway over the measured windows: Claude Code processes started
per request (its /metrics counter), its own CPU per request (psutil, Claude Code excluded), and after each
level the resident memory of its Claude processes (RSS summed, and PSS: shared pages counted once).

Usage: .venv/bin/python bench/bench_throughput.py [--runs 20] [--levels 1,4,16] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from _harness import Gateway, MockUpstream, banner, machine, mb, ms, percentile, time_limit
from bench_latency import (
    ANSWER,
    SdkWorkspace,
    _conversation,
    _overhead_note,
    _prompt,
    _timed,
    gateway_turn,
)
from claude_agent_sdk import ClaudeSDKClient, UserMessage, query

TURNS = 5  # of a continued conversation: turns 2..5 are timed
STARTED = "claude_code_api_claude_processes_started_total"
TIME_LIMIT_SECONDS = 20 * 60


# --- the subjects ---------------------------------------------------------------------------------------


class ThroughGateway:
    """Streamed chat completions; each client a thread with its own connection (`gateway_turn`)."""

    name = "gateway"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.clients: list[httpx.Client] = []
        self.threads = ThreadPoolExecutor(max_workers=64)

    async def open(self, clients: int) -> None:
        while len(self.clients) < clients:
            self.clients.append(httpx.Client(timeout=120))

    async def close(self) -> None:
        for client in self.clients:
            client.close()
        self.threads.shutdown()

    async def _turn(self, worker: int, messages: list[dict[str, str]]) -> tuple[float | None, str]:
        call = gateway_turn, self.clients[worker], self.gateway, messages
        first, _, text = await asyncio.get_running_loop().run_in_executor(self.threads, *call)
        return first, text

    async def new_conversation(self, worker: int, prompt: str) -> float | None:
        return (await self._turn(worker, _conversation(prompt)))[0]

    async def continued(self, worker: int, prompt: str) -> list[float | None]:
        messages = _conversation(prompt)
        found = []
        for turn in range(TURNS):
            first, text = await self._turn(worker, messages)
            messages += [{"role": "assistant", "content": text}, {"role": "user", "content": f"And {turn}?"}]
            found.append(first)
        return found[1:]


class NewProcess:
    """`query()` per request: a new Claude Code process in a workspace of its own."""

    name = "new process"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def open(self, clients: int) -> None:
        pass

    async def close(self) -> None:
        pass

    async def new_conversation(self, worker: int, prompt: str) -> float | None:
        workspace = SdkWorkspace()
        try:
            started = time.perf_counter()
            async with contextlib.aclosing(
                query(prompt=prompt, options=workspace.options(self.upstream))
            ) as a:
                return (await _timed(a, started))[0]
        finally:
            workspace.remove()

    async def continued(self, worker: int, prompt: str) -> list[float | None]:
        return []


async def _prompts_seen(messages: AsyncIterator[Any], uuids: list[str]) -> AsyncIterator[Any]:
    """Passes `messages` on, noting the uuids of the user messages the CLI replays (not tool results)."""
    async for message in messages:
        if isinstance(message, UserMessage) and message.uuid and message.parent_tool_use_id is None:
            uuids.append(message.uuid)
        yield message


class KeptProcess:
    """A connected `ClaudeSDKClient` that rewinds each conversation out of itself when it is done."""

    def __init__(self, upstream: str) -> None:
        self.workspace = SdkWorkspace()
        options = self.workspace.options(upstream)
        extra_args = {**options.extra_args, "replay-user-messages": None}
        self.client = ClaudeSDKClient(dataclasses.replace(options, extra_args=extra_args))
        self.prompts: list[str] = []  # uuids of the user messages the conversation holds, oldest first

    async def turn(self, prompt: str) -> float | None:
        started = time.perf_counter()
        await self.client.query(prompt)
        first, _, _ = await _timed(_prompts_seen(self.client.receive_response(), self.prompts), started)
        return first

    async def forget(self) -> None:
        """Empties the conversation: one rewind per user message, the latest first."""
        while self.prompts:
            request = {"subtype": "rewind_conversation", "target_message_uuid": self.prompts.pop()}
            answer = await self.client._query._send_control_request(request)  # type: ignore[union-attr]
            if not answer.get("rewound"):
                raise RuntimeError(f"the CLI did not rewind: {answer}")

    async def close(self) -> None:
        try:
            await self.client.disconnect()
        finally:
            self.workspace.remove()


class KeptClient:
    name = "kept client"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.kept: list[KeptProcess] = []

    async def open(self, clients: int) -> None:
        fresh = [KeptProcess(self.upstream) for _ in range(clients - len(self.kept))]
        self.kept += fresh
        for process in fresh:
            await process.client.connect()
            await process.turn(_prompt(0))  # a fresh process's first turn is slower than the next ones
            await process.forget()

    async def close(self) -> None:
        for process in self.kept:
            with contextlib.suppress(Exception):
                await process.close()

    async def new_conversation(self, worker: int, prompt: str) -> float | None:
        process = self.kept[worker]
        first = await process.turn(prompt)
        await process.forget()
        return first

    async def continued(self, worker: int, prompt: str) -> list[float | None]:
        process = self.kept[worker]
        found = [await process.turn(prompt)]
        found += [await process.turn(f"And {turn}?") for turn in range(TURNS - 1)]
        await process.forget()
        return found[1:]


Subject = ThroughGateway | NewProcess | KeptClient


# --- measuring ------------------------------------------------------------------------------------------


@dataclass
class Latency:
    new: list[float] = field(default_factory=list)
    continued: list[float] = field(default_factory=list)


@dataclass
class Level:
    clients: int
    seconds: float = 0.0
    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    warmup: float = 0.0
    # the gateway only: over the measured window, and its memory after it
    started: float | None = None
    cpu: float | None = None
    memory: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def latency(subject: Subject, runs: int) -> Latency:
    found = Latency()
    await subject.open(1)
    await subject.new_conversation(0, _prompt(-1))  # unmeasured: the page cache, the pool's first process
    for n in range(runs):
        first = await subject.new_conversation(0, _prompt(n))
        if first is not None:
            found.new.append(first)
    for n in range(max(1, runs // (TURNS - 1))):
        found.continued += [first for first in await subject.continued(0, _prompt(n)) if first is not None]
    return found


def _gateway_counts(gateway: Gateway) -> tuple[float, float]:
    """Processes started so far and the gateway process's own CPU seconds."""
    assert gateway.ps is not None
    times = gateway.ps.cpu_times()
    return gateway.metric(STARTED), times.user + times.system


def _pool_memory(gateway: Gateway) -> dict[str, float]:
    found = {"processes": 0.0, "rss": 0.0, "pss": 0.0, "gateway_rss": float(gateway.rss())}
    for process in gateway.claude_processes():
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            found["processes"] += 1
            found["rss"] += info.rss
            found["pss"] += getattr(info, "pss", 0)
    return found


async def closed_loop(subject: Subject, clients: int, warmup: float, duration: float) -> Level:
    """`clients` workers asking one new conversation after another; counts what ends in the window."""
    await subject.open(clients)
    level = Level(clients)
    gateway = subject.gateway if isinstance(subject, ThroughGateway) else None
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    ends: list[float] = []

    async def worker(index: int) -> None:
        n = 0
        while not done.is_set():
            n += 1
            try:
                await subject.new_conversation(index, _prompt(n))
                ends.append(time.perf_counter())
            except Exception as error:
                level.failures[f"{type(error).__name__}: {str(error)[:80]}"] += 1
                await asyncio.sleep(0.1)

    async def in_thread(call: Callable[[], Any]) -> Any:
        return await loop.run_in_executor(None, call)

    async def window() -> tuple[float, float]:
        began = time.perf_counter()
        await asyncio.sleep(warmup)
        if gateway is not None:
            # Past the warm-up, the pool may still grow: wait until no process started for a second.
            previous = -1.0
            while time.perf_counter() - began < 4 * warmup:
                started, _ = await in_thread(lambda: _gateway_counts(gateway))
                if started == previous:
                    break
                previous = started
                await asyncio.sleep(1)
            before = await in_thread(lambda: _gateway_counts(gateway))
        start = time.perf_counter()
        await asyncio.sleep(duration)
        end = time.perf_counter()
        if gateway is not None:
            after = await in_thread(lambda: _gateway_counts(gateway))
            level.started, level.cpu = after[0] - before[0], after[1] - before[1]
        done.set()
        level.warmup = start - began
        return start, end

    workers = [asyncio.ensure_future(worker(index)) for index in range(clients)]
    start, end = await window()
    await asyncio.gather(*workers)
    level.seconds = end - start
    level.requests = sum(start <= moment <= end for moment in ends)
    if gateway is not None:
        level.memory = await in_thread(lambda: _pool_memory(gateway))
    return level


# --- the table ------------------------------------------------------------------------------------------


def _p50_p95(values: list[float]) -> str:
    if not values:
        return f"{'-':>17}"
    return f"{ms(statistics.median(values))} /{ms(percentile(values, 0.95))}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _target(what: str, value: float | None, op: str, target: float, unit: str = "") -> str:
    goal = f"target {op} {target:g}{unit}"
    if value is None:
        return f"  {what:<62} {'-':>10}   {goal:<16} n/a"
    met = value >= target if op == ">=" else value <= target
    return f"  {what:<62} {f'{value:.2f}{unit}':>10}   {goal:<16} {'PASS' if met else 'MISS'}"


def report(
    latencies: dict[str, Latency], levels: dict[str, list[Level]], names: list[str], gateway_failures: int
) -> None:
    print(f"\n{'time to first token, ms':<34}" + "".join(f"{name:>22}" for name in names))
    for label, attribute in (("new conversation p50 / p95", "new"), ("turns 2..5 p50 / p95", "continued")):
        cells = [_p50_p95(getattr(latencies[name], attribute)) for name in names]
        print(f"  {label:<32}" + "".join(f"{cell:>22}" for cell in cells))
    print(
        f"  {'samples (new / continued)':<32}"
        + "".join(f"{f'{len(latencies[n].new)} / {len(latencies[n].continued)}':>22}" for n in names)
    )

    print(f"\n{'new conversations per second':<34}" + "".join(f"{name:>22}" for name in names))
    for index, level in enumerate(levels[names[0]]):
        rates = [levels[name][index].rate for name in names]
        print(
            f"  {f'{level.clients} client' + 's' * (level.clients > 1):<32}"
            + "".join(f"{rate:>22.2f}" for rate in rates)
        )
    for name in names:
        for level in levels[name]:
            if level.failures:
                print(f"  ! {name}, {level.clients} clients: failures {dict(level.failures)}")

    print("\ngateway, over the measured windows")
    print(
        f"  {'clients':<10}{'requests':>9}{'warm-up s':>10}{'started':>9}{'started/req':>12}"
        f"{'CPU ms/req':>11}{'procs':>6}{'pool RSS MB':>12}{'pool PSS MB':>12}{'gw RSS MB':>10}"
    )
    for level in levels["gateway"]:
        per = _ratio(level.started, level.requests)
        cpu = _ratio(level.cpu, level.requests)
        memory = level.memory
        print(
            f"  {level.clients:<10}{level.requests:>9}{level.warmup:>10.1f}{level.started or 0:>9.0f}"
            f"{'-' if per is None else f'{per:.3f}':>12}{'-' if cpu is None else f'{cpu * 1000:.2f}':>11}"
            f"{memory.get('processes', 0):>6.0f}{mb(memory.get('rss', 0)):>12}{mb(memory.get('pss', 0)):>12}"
            f"{mb(memory.get('gateway_rss', 0)):>10}"
        )

    gateway = {level.clients: level for level in levels["gateway"]}
    new_process = {level.clients: level for level in levels["new process"]}
    kept = {level.clients: level for level in levels["kept client"]}
    measured = levels["gateway"]
    requests = sum(level.requests for level in measured)
    started = sum(level.started or 0 for level in measured)
    cpu = sum(level.cpu or 0 for level in measured)

    def median(name: str, attribute: str) -> float | None:
        values = getattr(latencies[name], attribute)
        return statistics.median(values) if values else None

    print("\nratios (issue 13, Done when)")
    four, sixteen = gateway.get(4), gateway.get(16)
    print(
        _target(
            "throughput at 4 clients, gateway / new process",
            _ratio(four.rate if four else None, new_process[4].rate if 4 in new_process else None),
            ">=",
            3,
            "x",
        )
    )
    print(
        _target(
            "throughput, gateway at 16 clients / at 4",
            _ratio(sixteen.rate if sixteen else None, four.rate if four else None),
            ">=",
            1,
            "x",
        )
    )
    print(
        _target(
            "TTFT p50 new conversation, gateway / new process",
            _ratio(median("gateway", "new"), median("new process", "new")),
            "<=",
            0.15,
            "x",
        )
    )
    print(
        _target(
            "TTFT p50 turns 2..5, gateway / kept client",
            _ratio(median("gateway", "continued"), median("kept client", "continued")),
            "<=",
            1.5,
            "x",
        )
    )
    print(
        _target(
            f"processes started per request (gateway, {requests} requests)",
            _ratio(started, requests),
            "<=",
            0.10,
        )
    )
    per_request = _ratio(cpu, requests)
    print(
        _target(
            "gateway CPU per request, Claude Code excluded",
            None if per_request is None else per_request * 1000,
            "<=",
            10,
            "ms",
        )
    )
    to_kept = _ratio(four.rate if four else None, kept[4].rate if 4 in kept else None)
    print(
        "  for reference: throughput at 4 clients, gateway / kept client "
        f"{'-' if to_kept is None else f'{to_kept:.2f}x'}; failed gateway requests: {gateway_failures}"
    )


async def run(upstream: str, gateway: Gateway, args: argparse.Namespace) -> None:
    subjects: list[Subject] = [ThroughGateway(gateway), NewProcess(upstream), KeptClient(upstream)]
    names = [subject.name for subject in subjects]
    latencies: dict[str, Latency] = {}
    overhead = ""
    levels: dict[str, list[Level]] = {name: [] for name in names}
    try:
        for subject in subjects:
            print(f"latency: {subject.name}", flush=True)
            latencies[subject.name] = await latency(subject, args.runs)
            if isinstance(subject, ThroughGateway):
                overhead = await asyncio.to_thread(_overhead_note, gateway)
        # Level by level, each subject in turn: the ratios at one level compare the same minutes.
        for clients in args.levels:
            for subject in subjects:
                level = await closed_loop(subject, clients, args.warmup, args.duration)
                levels[subject.name].append(level)
                print(f"throughput: {subject.name}, {clients} clients: {level.rate:.2f}/s", flush=True)
    finally:
        for subject in subjects:
            await subject.close()
    failures = sum(sum(level.failures.values()) for level in levels["gateway"])
    report(latencies, levels, names, failures)
    print(f"  one client, TTFT runs: {overhead}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="new conversations timed for TTFT (default 20)")
    parser.add_argument(
        "--levels",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 4, 16],
        help="clients in a closed loop (default 1,4,16)",
    )
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per level (default 10)")
    parser.add_argument("--warmup", type=float, default=4, help="unmeasured seconds first (default 4)")
    args = parser.parse_args()
    banner(
        f"bench_throughput: {args.runs} runs, levels {args.levels}, {args.duration:g} s a level; {machine()}"
    )
    with (
        time_limit(TIME_LIMIT_SECONDS, "bench_throughput"),
        MockUpstream(text=ANSWER, chunk_size=8) as upstream,
        Gateway(upstream.url) as gateway,
    ):
        asyncio.run(run(upstream.url, gateway, args))
        warnings = gateway.warnings()
    print(f"\n{machine()}")
    warnings = Counter({line: n for line, n in warnings.items() if "Admin site NOT served" not in line})
    if warnings:
        print("gateway warnings: " + "; ".join(f"{count}x {line}" for line, count in warnings.items()))


if __name__ == "__main__":
    main()
