"""Simultaneous streaming clients against a slow upstream: successes, 429s, time to first token, memory.

For each level (1, 8, 32, 64 clients) a fresh gateway with its default settings (WARM_PROCESSES=1, the
process limit derived from free memory, QUEUE_TIMEOUT=30) takes one warm-up request (so that the limit
has been derived from a measured process, as on a running server), then every client sends one streamed
chat request at the same moment. The mock upstream waits 0.5 s before its headers and 20 ms between
its 50 text deltas (about 1.5 s per answer). Gateway RSS and the summed RSS of its Claude processes are
sampled every 100 ms; a summed RSS counts the pages the processes share (the CLI executable) once per
process, so it overstates their real footprint.

Usage: .venv/bin/python bench/bench_concurrency.py [--levels 1,8,32,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass, field

import httpx
import psutil
from _harness import Gateway, MockUpstream, banner, machine, mb, median_p95, time_limit

ANSWER = "All of these clients asked at the same time, and each one gets its own answer streamed. " * 5
PER_PROCESS_BYTES = 260 * 2**20  # a Claude process with headroom, to check free memory before a level
TIME_LIMIT_SECONDS = 9 * 60


@dataclass
class Outcome:
    ok: int = 0
    rate_limited: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    first_token: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1


@dataclass
class Peaks:
    gateway_rss: int = 0
    claude_count: int = 0
    claude_rss: int = 0
    queued: float = 0.0


def sample(gateway: Gateway, peaks: Peaks, stop: threading.Event) -> None:
    next_metrics = 0.0
    while not stop.wait(0.1):
        try:
            peaks.gateway_rss = max(peaks.gateway_rss, gateway.rss())
            count, rss = gateway.claude_rss()
            peaks.claude_count = max(peaks.claude_count, count)
            peaks.claude_rss = max(peaks.claude_rss, rss)
            if time.monotonic() >= next_metrics:
                next_metrics = time.monotonic() + 0.5
                peaks.queued = max(peaks.queued, gateway.metric("claude_code_api_claude_queue_length"))
        except (psutil.Error, httpx.HTTPError):
            continue


async def one_client(
    client: httpx.AsyncClient, gateway: Gateway, go: asyncio.Event, outcome: Outcome
) -> None:
    body = {
        "model": "sonnet",
        "messages": [{"role": "user", "content": f"Hello ({secrets.token_hex(4)})"}],
        "stream": True,
    }
    await go.wait()
    started = time.perf_counter()
    first: float | None = None
    try:
        async with client.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers
        ) as response:
            if response.status_code == 429:
                outcome.rate_limited += 1
                return
            if response.status_code != 200:
                outcome.fail(f"HTTP {response.status_code}")
                return
            async for line in response.aiter_lines():
                if line.startswith("data: {") and first is None:
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        outcome.fail("error event")
                        return
                    if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                        first = time.perf_counter() - started
    except httpx.HTTPError as exc:
        outcome.fail(type(exc).__name__)
        return
    outcome.ok += 1
    if first is not None:
        outcome.first_token.append(first)
    outcome.done.append(time.perf_counter() - started)


async def run_level(gateway: Gateway, clients: int) -> tuple[Outcome, float]:
    outcome = Outcome()
    go = asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, connect=10)) as client:
        tasks = [asyncio.create_task(one_client(client, gateway, go, outcome)) for _ in range(clients)]
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
    return outcome, time.perf_counter() - started


def warm_up(gateway: Gateway) -> None:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "warm-up"}]}
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers, timeout=60
    )
    response.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,8,32,64", help="comma-separated client counts")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    banner(f"bench_concurrency: levels {levels}, slow upstream (0.5 s + 50 x 20 ms); {machine()}")
    rows = []
    with (
        time_limit(TIME_LIMIT_SECONDS, "bench_concurrency"),
        MockUpstream(
            text=ANSWER, chunk_size=len(ANSWER) // 50 + 1, delay=0.02, first_byte_delay=0.5
        ) as upstream,
    ):
        for clients in levels:
            available = psutil.virtual_memory().available
            if available < clients * PER_PROCESS_BYTES + 2 * 2**30:
                print(f"{clients} clients: skipped, only {mb(available).strip()} MB of memory available")
                continue
            with Gateway(upstream.url) as gateway:
                warm_up(gateway)
                limit = gateway.metric("claude_code_api_claude_process_limit")
                peaks = Peaks()
                stop = threading.Event()
                sampler = threading.Thread(target=sample, args=(gateway, peaks, stop), daemon=True)
                sampler.start()
                try:
                    outcome, wall = asyncio.run(run_level(gateway, clients))
                finally:
                    stop.set()
                    sampler.join(5)
                started = gateway.metric("claude_code_api_claude_processes_started_total")
                if outcome.failed:
                    for line, count in gateway.warnings().most_common(5):
                        print(f"  gateway log, {count} x {line}")
            failed = ", ".join(f"{why}: {count}" for why, count in outcome.failed.items()) or "0"
            rows.append(
                f"{clients:>7} {outcome.ok:>4} {outcome.rate_limited:>5} {failed:>7}  "
                f"{median_p95(outcome.first_token)}  {median_p95(outcome.done)} {wall:>7.1f} "
                f"{mb(peaks.gateway_rss)} {peaks.claude_count:>5} {mb(peaks.claude_rss):>9} "
                f"{peaks.queued:>6.0f} {limit:>5.0f} {started:>7.0f}"
            )
            print(f"{clients} clients done in {wall:.1f} s", flush=True)
    print(
        f"\n{'clients':>7} {'ok':>4} {'429':>5} {'failed':>7}  {'1st token ms med / p95':>19}  "
        f"{'done ms med / p95':>19} {'wall s':>7} {'gw MB':>7} {'claude':>5} {'claude MB':>9} "
        f"{'queue':>6} {'limit':>5} {'started':>7}"
    )
    for row in rows:
        print(row)
    print(
        "\ngw MB: peak gateway RSS; claude / claude MB: peak number of Claude processes and peak sum of "
        "their RSS; queue: peak queue length seen on /metrics; limit: the derived process limit; "
        "started: Claude processes started in all (warm-up and spares included). Times from the moment "
        "all clients were released."
    )
    if not rows:
        raise SystemExit("no level could run")


if __name__ == "__main__":
    main()
