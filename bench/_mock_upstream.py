"""The mock Anthropic API of the integration tests, served on 127.0.0.1 for a benchmark.

Prints its base URL on the first line of stdout, answers every Messages request with one scripted
reply, and exits when its stdin closes (so it never outlives the benchmark that started it).
"""

from __future__ import annotations

import argparse
import sys

from tests.integration.mock_anthropic import MockAnthropic, Reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default=None, help="the answer's text; default: echo the prompt")
    parser.add_argument("--chunk-size", type=int, default=8, help="characters per text delta")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between deltas")
    parser.add_argument("--first-byte-delay", type=float, default=0.0, help="seconds before the headers")
    args = parser.parse_args()
    reply = Reply(
        text=args.text, chunk_size=args.chunk_size, delay=args.delay, first_byte_delay=args.first_byte_delay
    )
    with MockAnthropic() as mock:
        mock.always(reply)
        print(mock.url, flush=True)
        # It records every request (some tens of kB each): a few hundred MB for the longest soak.
        # `reset()` would forget them, but it also drops the streams in flight.
        sys.stdin.read()


if __name__ == "__main__":
    main()
