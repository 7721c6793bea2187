"""A client's tool loop through the gateway: time to first token of each step, against a continued chat.

Issue 12 asks that steps 2..10 of a 10-step tool loop reach their first token within 1.5x of a continued
conversation's turn, and that the whole loop run in one Claude Code process: each step's results go to the
process waiting inside the call. The mock upstream calls the client's function until the conversation holds
`--steps` results, then answers; the same gateway also serves plain conversations of `--steps` turns, the
reference. Both stream through `/v1/chat/completions`; the first token is the first chunk that carries
text or a tool call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import httpx
from _harness import Gateway, MockUpstream, banner, machine, median_p95

TOOL: Any = {
    "type": "function",
    "function": {"name": "step", "description": "Does one step.", "parameters": {"type": "object"}},
}


def streamed_turn(
    client: httpx.Client, gateway: Gateway, messages: list[Any], tools: bool
) -> tuple[float, Any]:
    """One streamed request: seconds to its first token, and the assistant message it made."""
    body: dict[str, Any] = {"model": "sonnet", "stream": True, "messages": messages}
    if tools:
        body["tools"] = [TOOL]
    started = time.monotonic()
    first: float | None = None
    text, calls = "", {}
    with client.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                delta = choice.get("delta", {})
                if first is None and (delta.get("content") or delta.get("tool_calls")):
                    first = time.monotonic() - started
                text += delta.get("content") or ""
                for call in delta.get("tool_calls") or []:
                    entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                    entry["id"] = call.get("id") or entry["id"]
                    function = call.get("function") or {}
                    entry["name"] = function.get("name") or entry["name"]
                    entry["arguments"] += function.get("arguments") or ""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()
        ]
    return (first if first is not None else time.monotonic() - started), message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10, help="tool calls per loop")
    parser.add_argument("--loops", type=int, default=5, help="loops (and plain conversations) measured")
    args = parser.parse_args()
    banner(f"bench_tool_loop: {args.loops} loops of {args.steps} steps; {machine()}")
    with MockUpstream(tool_steps=args.steps) as upstream, Gateway(upstream.url, warm_processes=1) as gateway:
        loop_ttft: list[float] = []
        plain_ttft: list[float] = []
        processes_per_loop: list[float] = []
        with httpx.Client(timeout=60) as client:
            streamed_turn(client, gateway, [{"role": "user", "content": "warm up"}], tools=True)
            for number in range(args.loops + 1):
                started = gateway.metric("claude_code_api_claude_processes_started_total")
                messages: list[Any] = [{"role": "user", "content": f"loop {number}"}]
                for step in range(args.steps + 1):
                    ttft, message = streamed_turn(client, gateway, messages, tools=True)
                    if number and step:  # steps 2..N+1 of measured loops
                        loop_ttft.append(ttft)
                    messages.append(message)
                    for call in message.get("tool_calls") or []:
                        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "done"})
                if number:
                    processes_per_loop.append(
                        gateway.metric("claude_code_api_claude_processes_started_total") - started
                    )
                conversation: list[Any] = []
                for turn in range(args.steps + 1):
                    conversation.append({"role": "user", "content": f"conversation {number} turn {turn}"})
                    ttft, message = streamed_turn(client, gateway, conversation, tools=False)
                    if number and turn:
                        plain_ttft.append(ttft)
                    conversation.append(message)
        resumes = gateway.metric("claude_code_api_claude_tool_call_resumes_total")
    ratio = statistics.median(loop_ttft) / statistics.median(plain_ttft)
    print(f"time to first token, tool-loop steps 2..{args.steps + 1}: {median_p95(loop_ttft)}")
    print(f"time to first token, continued conversation turns 2..{args.steps + 1}: {median_p95(plain_ttft)}")
    print(f"ratio of medians, tool loop / continued conversation: {ratio:.2f}x (target <= 1.5x)")
    print(f"processes started per measured loop: {processes_per_loop} (the spare of a new option set counts)")
    print(f"tool results handed to a waiting process: {resumes:.0f}")


if __name__ == "__main__":
    main()
