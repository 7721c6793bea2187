"""The gateway's own CPU per chat request (Claude Code excluded), and where it goes.

Runs new one-message conversations (a unique prompt each, same key, model and system prompt) against the
real gateway on the project's mock upstream, streamed and not, at 1 and 4 concurrent clients, after a
warm-up. For each, it reads the gateway process's own user + system CPU time (psutil; its Claude Code
children are other processes and are not counted) before and after the requests and prints the CPU per
request; each level is repeated `--repeats` times and the median is printed with the spread.

With `--py-spy DIR`, one more round per mode runs under `py-spy record` (py-spy must be on PATH or in
the venv: `.venv/bin/pip install py-spy`), and the top functions by own and by cumulative time are
printed from its raw (collapsed stacks) output, which is kept in DIR.

Usage: .venv/bin/python bench/profile_gateway.py [--requests 40] [--repeats 3] [--py-spy /tmp/prof]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _harness import Gateway, MockUpstream, banner, machine

MODEL = "sonnet"
SYSTEM_PROMPT = "Answer in one short paragraph."
ANSWER = (
    "The gateway starts Claude Code for each key, streams its answer back as OpenAI chunks, and keeps "
    "a process warm for the next request so that the first token arrives quickly."
)


def _body(stream: bool) -> dict[str, object]:
    prompt = f"Question {secrets.token_hex(6)}: what does the gateway do?"
    return {
        "model": MODEL,
        "stream": stream,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
    }


def _one(client: httpx.Client, gateway: Gateway, stream: bool) -> None:
    url = f"{gateway.url}/v1/chat/completions"
    if stream:
        with client.stream("POST", url, json=_body(True), headers=gateway.headers) as response:
            response.raise_for_status()
            tail = b""
            for chunk in response.iter_bytes():
                tail = (tail + chunk)[-64:]
            if b"[DONE]" not in tail:
                raise RuntimeError("a stream ended without [DONE]")
    else:
        response = client.post(url, json=_body(False), headers=gateway.headers)
        response.raise_for_status()


def _cpu(gateway: Gateway) -> float:
    assert gateway.ps is not None
    times = gateway.ps.cpu_times()
    return float(times.user + times.system)


def run_round(gateway: Gateway, stream: bool, clients: int, requests: int) -> tuple[float, float]:
    """(gateway CPU seconds per request, requests per second) for `requests` requests by `clients`."""
    per_client = max(1, requests // clients)

    def loop(_: int) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(per_client):
                _one(client, gateway, stream)

    time.sleep(0.3)  # let the previous round's background work (parking, spares) settle
    before, started = _cpu(gateway), time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(loop, range(clients)))
    # Work a request leaves behind (after [DONE]: settling the process, the usage write) is its own.
    time.sleep(0.3)
    elapsed = time.monotonic() - started - 0.3
    total = per_client * clients
    return (_cpu(gateway) - before) / total, total / elapsed


def _py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def profile_round(gateway: Gateway, stream: bool, clients: int, requests: int, out: Path) -> Path:
    """One round under `py-spy record`; returns the collapsed-stacks file."""
    spy = _py_spy()
    if spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    assert gateway.process is not None
    name = f"{'stream' if stream else 'whole'}-{clients}"
    raw = out / f"{name}.txt"
    command = [spy, "record", "--pid", str(gateway.process.pid), "--rate", "200", "--nonblocking"]
    command += ["--format", "raw", "--output", str(raw)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        run_round(gateway, stream, clients, requests)
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(30)
    return raw


def summarise(raw: Path, top: int) -> str:
    """The functions with the most own and cumulative samples in a collapsed-stacks file, idle excluded."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        # Waiting in the event loop's selector or a thread pool's queue is idle, not work.
        if any(idle in leaf for idle in ("select (selectors.py", "_worker (concurrent", "wait (threading")):
            continue
        count = int(count_text)
        total += count
        own[_short(leaf)] += count
        for frame in {_short(frame) for frame in frames}:
            cumulative[frame] += count
    lines = [f"{total} busy samples"]
    lines.append("  own time:")
    lines += [f"    {count / total:6.1%}  {frame}" for frame, count in own.most_common(top)]
    lines.append("  cumulative time:")
    lines += [f"    {count / total:6.1%}  {frame}" for frame, count in cumulative.most_common(top * 2)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where.rsplit(':', 1)[0]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="requests per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per mode and level")
    parser.add_argument("--clients", default="1,4", help="concurrency levels")
    parser.add_argument("--modes", default="stream,whole", help="stream and/or whole")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR", help="profile into DIR")
    parser.add_argument("--top", type=int, default=20, help="functions listed per profile")
    args = parser.parse_args()
    levels = [int(level) for level in args.clients.split(",")]
    modes = [mode == "stream" for mode in args.modes.split(",")]
    print(machine())
    with MockUpstream(text=ANSWER) as upstream, Gateway(upstream.url, log_level="INFO") as gateway:
        print(f"gateway pid {gateway.process.pid if gateway.process else '?'}")
        for stream in modes:  # warm-up: the pool's processes started and measured
            run_round(gateway, stream, max(levels), 2 * max(levels))
        banner("gateway CPU per request (ms; Claude Code excluded)")
        print(f"{'mode':<8} {'clients':>7}  {'median':>7}  {'min':>7}  {'max':>7}  {'req/s':>6}")
        for stream in modes:
            for clients in levels:
                rounds = [run_round(gateway, stream, clients, args.requests) for _ in range(args.repeats)]
                cpu = [value * 1000 for value, _ in rounds]
                rate = statistics.median(rate for _, rate in rounds)
                mode = "stream" if stream else "whole"
                print(
                    f"{mode:<8} {clients:>7}  {statistics.median(cpu):7.2f}  {min(cpu):7.2f}  "
                    f"{max(cpu):7.2f}  {rate:6.1f}",
                    flush=True,
                )
        processes = gateway.metric("claude_code_api_claude_processes_started_total")
        print(f"Claude processes started: {processes:.0f}; alive now: {len(gateway.claude_processes())}")
        if args.py_spy is not None:
            args.py_spy.mkdir(parents=True, exist_ok=True)
            for stream in modes:
                raw = profile_round(gateway, stream, max(levels), args.requests, args.py_spy)
                banner(f"py-spy: {raw.stem} ({raw})")
                print(summarise(raw, args.top), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
