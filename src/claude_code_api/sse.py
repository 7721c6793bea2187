"""Server-Sent Events framing: one object is one `data:` event; a stream ends with `[DONE]`; pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"

# Keep proxies (nginx above all) from buffering the stream, and caches from keeping it.
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


def encode_event(payload: Mapping[str, Any]) -> bytes:
    """One JSON object as an SSE `data:` event."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def encode_named_event(event: str, payload: Mapping[str, Any]) -> bytes:
    """An SSE event with an `event:` name, as Anthropic's and the Responses API's streams use."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
