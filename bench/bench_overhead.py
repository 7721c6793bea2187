"""The gateway's own cost on paths that never reach Claude: requests per second and latency.

One gateway process (`claude-code-api serve`, one uvicorn worker, access log on at INFO as in
production) answers `GET /v1/models` with a valid key (a key lookup in SQLite), with an unknown key
(the same lookup, then a 401) and without any key (a 401 before the store). The load comes from `wrk`
(Debian: `apt-get install -y wrk`), once with 1 connection (latency of a lone request) and once with
16 (throughput). Without wrk, a Python load loop (httpx, asyncio) stands in: it is labelled as such,
and since it spends more CPU per request than the gateway, its figures are a lower bound.

Usage: .venv/bin/python bench/bench_overhead.py [--duration 8] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

import httpx
from _harness import Gateway, banner, machine, percentile, time_limit

TIME_LIMIT_SECONDS = 5 * 60


@dataclass(frozen=True)
class Case:
    label: str
    path: str
    authorization: str | None
    status: int


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    socket_errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _to_ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    assert found, value
    return float(found.group(1)) * _UNITS[found.group(2)]


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text, flags=re.MULTILINE)
    assert found, f"wrk printed no {pattern!r}:\n{text}"
    return float(found.group(1))


def run_wrk(url: str, authorization: str | None, connections: int, duration: float) -> Result:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s"]
    if authorization:
        command += ["-H", f"Authorization: {authorization}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Result(
        requests_per_second=_number(r"Requests/sec:\s+([\d.]+)", output),
        p50_ms=_to_ms(re.search(r"^\s+50%\s+(\S+)$", output, flags=re.MULTILINE).group(1)),  # type: ignore[union-attr]
        p99_ms=_to_ms(re.search(r"^\s+99%\s+(\S+)$", output, flags=re.MULTILINE).group(1)),  # type: ignore[union-attr]
        requests=int(_number(r"(\d+) requests in", output)),
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
    )


async def _python_load(url: str, authorization: str | None, connections: int, duration: float) -> Result:
    headers = {"authorization": authorization} if authorization else {}
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await client.get(url, headers=headers)
                except httpx.TransportError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return Result(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        requests=len(latencies),
        socket_errors=errors,
    )


def _answered(gateway: Gateway, status: int) -> tuple[float, float]:
    """Requests to /v1/models the gateway has counted: with `status`, and in all."""
    found = gateway.metrics()
    mine = other = 0.0
    for (name, labels), value in found.items():
        if name == "claude_code_api_requests_total" and ("route", "/v1/models") in labels:
            if ("status", str(status)) in labels:
                mine += value
            else:
                other += value
    return mine, mine + other


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--connections", type=int, default=16, help="connections for throughput (default 16)")
    parser.add_argument("--python", action="store_true", help="use the Python load loop even if wrk is there")
    args = parser.parse_args()
    use_wrk = shutil.which("wrk") is not None and not args.python
    tool = "wrk 1 thread" if use_wrk else "Python load loop (httpx/asyncio; a lower bound, client-bound)"
    banner(f"bench_overhead: {tool}, {args.duration:g} s per row; {machine()}")
    if not use_wrk and not args.python:
        print("wrk is not installed: `sudo apt-get install -y wrk` for the standard figures.")
    with time_limit(TIME_LIMIT_SECONDS, "bench_overhead"), Gateway("http://127.0.0.1:9") as gateway:
        cases = [
            Case("GET /v1/models, valid key", "/v1/models", f"Bearer {gateway.api_key}", 200),
            Case("GET /v1/models, unknown key -> 401", "/v1/models", "Bearer sk-" + "x" * 48, 401),
            Case("GET /v1/models, no key -> 401", "/v1/models", None, 401),
        ]
        for case in cases:  # check each path answers as expected, and warm it up
            headers = {"authorization": case.authorization} if case.authorization else {}
            status = httpx.get(gateway.url + case.path, headers=headers).status_code
            if status != case.status:
                raise SystemExit(f"{case.label}: expected {case.status}, got {status}")
        print(
            f"\n{'path':<38} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
            f"{'unexpected':>10} {'gateway CPU':>11}"
        )
        for case in cases:
            for connections in (1, args.connections):
                matching_before, total_before = _answered(gateway, case.status)
                cpu_before = gateway.ps.cpu_times()  # type: ignore[union-attr]
                started = time.perf_counter()
                if use_wrk:
                    result = run_wrk(gateway.url + case.path, case.authorization, connections, args.duration)
                else:
                    load = _python_load(
                        gateway.url + case.path, case.authorization, connections, args.duration
                    )
                    result = asyncio.run(load)
                elapsed = time.perf_counter() - started
                cpu_after = gateway.ps.cpu_times()  # type: ignore[union-attr]
                cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / elapsed
                matching, total = _answered(gateway, case.status)
                unexpected = (total - total_before) - (matching - matching_before) + result.socket_errors
                print(
                    f"{case.label:<38} {connections:>5} {result.requests_per_second:>9.0f} "
                    f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} {result.requests:>9} {unexpected:>10.0f} "
                    f"{cpu:>11.0%}",
                    flush=True,
                )
        rss = gateway.rss()
    print(
        f"\ngateway RSS after the load: {rss / 2**20:.1f} MB. unexpected: answers with another status than "
        "the row's, counted by the gateway's own /metrics, plus socket errors. gateway CPU: its CPU time / "
        "wall time (100% = one core)."
    )


if __name__ == "__main__":
    main()
