"""Thousands of requests in a row through one gateway: does its memory stay flat?

One client sends requests one after another: chat completions (streamed and not, new conversations
and second turns) and, in between, the cheap paths (model list and lookup, unknown key, unknown
model, health, metrics). The gateway's RSS is read after the first 500 requests and at the end; it
passes when the end is within 10 % of the first figure. Open file descriptors and threads are shown
too, and no Claude process may be left once the gateway has stopped.

A chat request starts or reuses a Claude process (0.1 to 1 s on 2 cores), so by default one request in
ten is a chat: 5,000 requests then take about five minutes. `--chat-share 1` soaks the chat path alone
(about an hour for 5,000). MAX_CLAUDE_PROCESSES is 8 here (`--max-claude-processes`): every answered
conversation keeps its process for its next turn, so with the limit derived from memory a soak would
fill 70 % of this machine with idle processes, without exercising anything more in the gateway.

Usage: .venv/bin/python bench/bench_soak.py [--requests 5000] [--chat-share 0.1] [--max-minutes 9]
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
from _harness import Gateway, MockUpstream, banner, machine, mb

CHECKPOINT = 500
TOLERANCE = 0.10

Step = Callable[[httpx.Client, Gateway], int]


def _chat(client: httpx.Client, gateway: Gateway, messages: list[dict[str, str]], stream: bool) -> str:
    body = {"model": "haiku", "messages": messages, "stream": stream}
    url = f"{gateway.url}/v1/chat/completions"
    if not stream:
        response = client.post(url, json=body, headers=gateway.headers)
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])
    text = []
    with client.stream("POST", url, json=body, headers=gateway.headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)


def chat_steps() -> Iterator[Step]:
    """New conversations and second turns, streamed and not, in turn."""
    for n in itertools.count():
        stream = n % 2 == 0

        def new(client: httpx.Client, gateway: Gateway, stream: bool = stream) -> int:
            _chat(client, gateway, [{"role": "user", "content": f"Hi {secrets.token_hex(4)}"}], stream)
            return 200

        def second_turn(client: httpx.Client, gateway: Gateway, stream: bool = stream) -> int:
            messages = [{"role": "user", "content": f"Hi {secrets.token_hex(4)}"}]
            answer = _chat(client, gateway, messages, stream)
            messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "More?"}]
            _chat(client, gateway, messages, not stream)
            return 200

        yield new if n % 3 else second_turn


def _get(path: str, authorization: str | None = "key") -> Step:
    def step(client: httpx.Client, gateway: Gateway) -> int:
        headers = gateway.headers if authorization == "key" else {}
        if authorization and authorization != "key":
            headers = {"authorization": authorization}
        return client.get(gateway.url + path, headers=headers).status_code

    return step


CHEAP_STEPS: list[Step] = [
    _get("/v1/models"),
    _get("/v1/models/claude-sonnet-4-5"),
    _get("/v1/models/no-such-model"),
    _get("/v1/models", authorization="Bearer sk-" + "u" * 48),
    _get("/v1/models", authorization=None),
    _get("/v1/health", authorization=None),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="requests in all (default 5000)")
    parser.add_argument("--chat-share", type=float, default=0.1, help="share of chat requests (default 0.1)")
    parser.add_argument("--max-claude-processes", type=int, default=8, help="the gateway's limit (default 8)")
    parser.add_argument(
        "--max-minutes", type=float, default=9, help="stop early after this long (default 9; 0: never)"
    )
    args = parser.parse_args()
    if args.requests <= CHECKPOINT:
        raise SystemExit(f"--requests must be above {CHECKPOINT}: the first reading is taken there")
    chat_every = max(1, round(1 / args.chat_share)) if args.chat_share > 0 else 0
    banner(
        f"bench_soak: {args.requests} requests, one chat in {chat_every or 'none'}, "
        f"MAX_CLAUDE_PROCESSES={args.max_claude_processes}; {machine()}"
    )
    deadline = time.monotonic() + args.max_minutes * 60 if args.max_minutes else float("inf")
    statuses: Counter[int] = Counter()
    chats = chat_steps()
    cheap = itertools.cycle(CHEAP_STEPS)
    readings: dict[str, tuple[int, int, int]] = {}
    done = 0
    started = time.monotonic()
    with (
        MockUpstream(chunk_size=4) as upstream,
        Gateway(upstream.url, max_claude_processes=args.max_claude_processes) as gateway,
        httpx.Client(timeout=60) as client,
    ):
        assert gateway.ps is not None
        for done in range(1, args.requests + 1):
            step = next(chats) if chat_every and done % chat_every == 0 else next(cheap)
            statuses[step(client, gateway)] += 1
            if done == CHECKPOINT or done == args.requests or time.monotonic() > deadline:
                readings["first 500" if done == CHECKPOINT else "end"] = (
                    gateway.rss(),
                    gateway.ps.num_fds(),
                    gateway.ps.num_threads(),
                )
            if done % 500 == 0:
                print(
                    f"{done:>6} requests, {time.monotonic() - started:6.0f} s, RSS {mb(gateway.rss())} MB",
                    flush=True,
                )
            if time.monotonic() > deadline:
                break
        counted = gateway.metrics()
        claude_started = counted.get(("claude_code_api_claude_processes_started_total", ()), 0)
        chat_requests = sum(
            value
            for (name, labels), value in counted.items()
            if name == "claude_code_api_requests_total" and ("route", "/v1/chat/completions") in labels
        )
        children = gateway.claude_processes()
    left = [p for p in children if p.is_running()]
    elapsed = time.monotonic() - started
    print(
        f"\n{done} requests in {elapsed:.0f} s ({done / elapsed:.1f}/s); "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    print(f"chat requests {chat_requests:.0f}, Claude processes started {claude_started:.0f}")
    if done < args.requests:
        print(
            f"STOPPED EARLY after {args.max_minutes:g} minutes (--max-minutes): figures cover {done} requests"
        )
    for name, (rss, fds, threads) in readings.items():
        print(f"gateway after {name:<9}: RSS {mb(rss)} MB, {fds} open files, {threads} threads")
    if "first 500" in readings and "end" in readings:
        first, end = readings["first 500"][0], readings["end"][0]
        change = (end - first) / first
        verdict = "within" if abs(change) <= TOLERANCE else "NOT within"
        print(f"RSS change {change:+.1%}: {verdict} {TOLERANCE:.0%}")
    print(f"Claude processes left after the gateway stopped: {len(left)}")


if __name__ == "__main__":
    main()
