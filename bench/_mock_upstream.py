"""The mock Anthropic API of the integration tests, served on 127.0.0.1 for a benchmark.

Prints its base URL on the first line of stdout, answers every Messages request with one scripted
reply, and exits when its stdin closes (so it never outlives the benchmark that started it).
"""

from __future__ import annotations

import argparse
import sys

from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest, Reply, Scripted, ToolUse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default=None, help="the answer's text; default: echo the prompt")
    parser.add_argument("--chunk-size", type=int, default=8, help="characters per text delta")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between deltas")
    parser.add_argument("--first-byte-delay", type=float, default=0.0, help="seconds before the headers")
    parser.add_argument(
        "--tool-steps",
        type=int,
        default=0,
        help="to a request that offers tools, call the first one until the conversation holds this many "
        "tool results, then answer",
    )
    args = parser.parse_args()
    reply = Reply(
        text=args.text, chunk_size=args.chunk_size, delay=args.delay, first_byte_delay=args.first_byte_delay
    )

    def answer(request: RecordedRequest) -> Scripted:
        tools = [tool["name"] for tool in request.body.get("tools") or [] if tool["name"].startswith("mcp__")]
        if not tools:
            return reply
        results = sum(
            1
            for message in request.body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        )
        if results >= args.tool_steps:
            return reply
        return Reply(
            text="", tool_uses=[ToolUse(tools[0], {"step": results + 1})], chunk_size=args.chunk_size
        )

    with MockAnthropic() as mock:
        mock.always(answer if args.tool_steps else reply)
        print(mock.url, flush=True)
        # It records every request (some tens of kB each): a few hundred MB for the longest soak.
        # `reset()` would forget them, but it also drops the streams in flight.
        sys.stdin.read()


if __name__ == "__main__":
    main()
