"""Time to first token and to the end of one answer: through the gateway, and from the SDK directly.

Both sides stream the same scripted answer from the mock upstream (no delay: what is measured is the
gateway, the SDK and the CLI, not a model). The SDK side uses the options and environment the runner
gives Claude Code (own HOME and working directory, no tools, the `claude_code` preset with an appended
system prompt, partial messages), started directly rather than through the gateway's launcher.

Modes, each a new conversation with a unique prompt unless said otherwise:
  cold       a new process per request: gateway with WARM_PROCESSES=0 / SDK `query()`
  warm       a process started ahead of the request: gateway's spare for the same key, model and system
             prompt (WARM_PROCESSES=1, the default) / a connected `ClaudeSDKClient`, first query timed
  continued  the second turn of a conversation (same history + a new user message): gateway with
             WARM_PROCESSES=1, whose process kept the first turn / the same `ClaudeSDKClient`'s second query;
             and, for reference, the gateway with WARM_PROCESSES=0 (a new process resuming a transcript)

Usage: .venv/bin/python bench/bench_latency.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    FAKE_OAUTH_TOKEN,
    Gateway,
    MockUpstream,
    banner,
    machine,
    median_p95,
    ms,
    time_limit,
)
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage, StreamEvent, query

from claude_code_api.claude.options import INHERITED_VARIABLES, bundled_cli_path

MODEL = "sonnet"
SYSTEM_PROMPT = "Answer in one short paragraph."
ANSWER = (
    "The gateway starts Claude Code for each key, streams its answer back as OpenAI chunks, and keeps "
    "a process warm for the next request so that the first token arrives quickly."
)
TIME_LIMIT_SECONDS = 15 * 60


@dataclass
class Timings:
    label: str
    first_token: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, first_token: float | None, done: float) -> None:
        if first_token is not None:
            self.first_token.append(first_token)
        self.done.append(done)

    def row(self) -> str:
        return (
            f"{self.label:<42} {len(self.done):>4}  {median_p95(self.first_token)}   "
            f"{median_p95(self.done)}  {self.note}"
        )


def _prompt(n: int) -> str:
    return f"Question {n} ({secrets.token_hex(4)}): what does the gateway do?"


# --- through the gateway ------------------------------------------------------------------------------


def gateway_turn(client: httpx.Client, gateway: Gateway, messages: list[dict[str, str]]) -> tuple[Any, ...]:
    """One streamed chat request: (first content delta, last byte) in seconds, and the answer's text."""
    body = {"model": MODEL, "messages": messages, "stream": True}
    started = time.perf_counter()
    first: float | None = None
    text = []
    with client.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    first = first if first is not None else time.perf_counter() - started
                    text.append(content)
    # Read to the last byte: the process is parked for the next turn just after [DONE].
    return first, time.perf_counter() - started, "".join(text)


def _conversation(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def _wait_for_idle(gateway: Gateway, count: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.metric("claude_code_api_claude_processes", state="warm_idle") >= count:
            return True
        time.sleep(0.02)
    return False


def _overhead_note(gateway: Gateway) -> str:
    found = gateway.metrics()
    parts = []
    for phase in ("before_claude", "after_claude"):
        labels = (("phase", phase), ("route", "/v1/chat/completions"))
        count = found.get(("claude_code_api_gateway_overhead_seconds_count", labels), 0)
        total = found.get(("claude_code_api_gateway_overhead_seconds_sum", labels), 0)
        if count:
            parts.append(f"{phase.split('_')[0]} {ms(total / count).strip()}")
    return "gateway overhead (mean ms, incl. untimed turns): " + ", ".join(parts) if parts else ""


def bench_gateway_cold(upstream: str, runs: int) -> list[Timings]:
    new = Timings("gateway  cold (WARM_PROCESSES=0)")
    continued = Timings("gateway  continued, new process + transcript")
    with Gateway(upstream, warm_processes=0) as gateway, httpx.Client(timeout=60) as client:
        gateway_turn(client, gateway, _conversation(_prompt(0)))  # first start: files into the page cache
        for n in range(runs):
            first, done, _ = gateway_turn(client, gateway, _conversation(_prompt(n)))
            new.add(first, done)
        new.note = _overhead_note(gateway)
        for n in range(runs):
            messages = _conversation(_prompt(n))
            _, _, answer = gateway_turn(client, gateway, messages)
            messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And then?"}]
            first, done, _ = gateway_turn(client, gateway, messages)
            continued.add(first, done)
    return [new, continued]


def bench_gateway_warm(upstream: str, runs: int) -> list[Timings]:
    warm = Timings("gateway  warm spare (WARM_PROCESSES=1)")
    with Gateway(upstream, warm_processes=1) as gateway, httpx.Client(timeout=60) as client:
        gateway_turn(client, gateway, _conversation(_prompt(0)))
        ready = 0
        for n in range(runs):
            # Every answered conversation keeps its process (idle): the spare is the one more.
            ready += _wait_for_idle(gateway, n + 2)
            first, done, _ = gateway_turn(client, gateway, _conversation(_prompt(n)))
            warm.add(first, done)
        warm.note = f"spare ready before {ready}/{runs} requests; " + _overhead_note(gateway)
    continued = Timings("gateway  continued, kept process")
    with Gateway(upstream, warm_processes=1) as gateway, httpx.Client(timeout=60) as client:
        for n in range(runs):
            messages = _conversation(_prompt(n))
            _, _, answer = gateway_turn(client, gateway, messages)
            messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And then?"}]
            first, done, _ = gateway_turn(client, gateway, messages)
            continued.add(first, done)
        started = gateway.metric("claude_code_api_claude_processes_started_total")
        continued.note = f"{started:.0f} processes started for {2 * runs} requests"
    return [warm, continued]


# --- the SDK directly -----------------------------------------------------------------------------------


class SdkWorkspace:
    """A HOME and working directory of its own, as the runner gives each process."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ccapi-bench-sdk-"))
        (self.root / "home").mkdir()
        (self.root / "work").mkdir()

    def options(self, upstream: str) -> ClaudeAgentOptions:
        env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
        env.update(
            {
                "HOME": str(self.root / "home"),
                "TMPDIR": str(self.root),
                "CLAUDE_CODE_OAUTH_TOKEN": FAKE_OAUTH_TOKEN,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CODE_MAX_RETRIES": "0",
                "ANTHROPIC_BASE_URL": upstream,
                "ANTHROPIC_API_KEY": "",
                "ANTHROPIC_AUTH_TOKEN": "",
            }
        )
        return ClaudeAgentOptions(
            cli_path=bundled_cli_path(),
            cwd=self.root / "work",
            env=env,
            model=MODEL,
            system_prompt={"type": "preset", "preset": "claude_code", "append": SYSTEM_PROMPT},
            tools=[],
            allowed_tools=[],
            setting_sources=[],
            strict_mcp_config=True,
            include_partial_messages=True,
            verbatim_prompts=True,
            extra_args={"no-session-persistence": None},
            stderr=lambda line: None,  # the runner logs it at DEBUG; here it would garble the table
        )

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


async def _timed(messages: AsyncIterator[Any], started: float) -> tuple[float | None, float, str]:
    first: float | None = None
    text = []
    async for message in messages:
        if isinstance(message, StreamEvent):
            delta = message.event.get("delta", {})
            if message.event.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                first = first if first is not None else time.perf_counter() - started
                text.append(delta.get("text", ""))
        elif isinstance(message, ResultMessage):
            return first, time.perf_counter() - started, "".join(text)
    raise RuntimeError("Claude Code ended without a result")


async def bench_sdk(upstream: str, runs: int) -> list[Timings]:
    cold = Timings("SDK      cold (query())")
    warm = Timings("SDK      warm (connected client, 1st query)")
    continued = Timings("SDK      continued (same client, 2nd query)")
    for n in range(runs + 1):
        workspace = SdkWorkspace()
        try:
            started = time.perf_counter()
            answer = query(prompt=_prompt(n), options=workspace.options(upstream))
            first, done, _ = await _timed(answer, started)
            if n:  # the first start only warms the page cache, as on the gateway side
                cold.add(first, done)
        finally:
            workspace.remove()
    for n in range(runs):
        workspace = SdkWorkspace()
        client = ClaudeSDKClient(workspace.options(upstream))
        try:
            await client.connect()
            started = time.perf_counter()
            await client.query(_prompt(n))
            first, done, _ = await _timed(client.receive_response(), started)
            warm.add(first, done)
            started = time.perf_counter()
            await client.query("And then?")
            first, done, _ = await _timed(client.receive_response(), started)
            continued.add(first, done)
        finally:
            await client.disconnect()
            workspace.remove()
    return [cold, warm, continued]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="timed requests per mode (default 20)")
    args = parser.parse_args()
    banner(f"bench_latency: {args.runs} runs per mode, mock upstream without delay; {machine()}")
    with time_limit(TIME_LIMIT_SECONDS, "bench_latency"), MockUpstream(text=ANSWER, chunk_size=8) as upstream:
        results = [
            *bench_gateway_cold(upstream.url, args.runs),
            *bench_gateway_warm(upstream.url, args.runs),
            *asyncio.run(bench_sdk(upstream.url, args.runs)),
        ]
    print(f"\n{'mode':<42} {'runs':>4}  first token ms (median / p95)   done ms (median / p95)")
    for timing in results:
        print(timing.row())
    print(
        "\nfirst token: request sent -> first text delta received; done: -> last byte of the response "
        "(gateway) or the result message (SDK)."
    )


if __name__ == "__main__":
    main()
