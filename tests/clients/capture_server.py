"""A loopback server that records what an agentic client sends and answers just enough for it to finish.

It speaks the three dialects the gateway serves, in their minimal streaming and non-streaming forms: the
Responses API (`/v1/responses`), the Messages API (`/v1/messages`, `count_tokens` included) and chat
completions (`/v1/chat/completions`). Each request is written to `--out` as one JSON file (method, path,
headers with secrets masked, body), so the inventory of the fields a client sends is read from real requests,
not from its documentation.

With `--call NAME=JSON` it answers a request that offers a tool named NAME, and whose conversation does not
yet carry a tool result, with a call to that tool (JSON is the arguments); the client's next request then
carries the result. Only the standard library is used, so it runs before the project's virtual environment
exists:

    python3 tests/clients/capture_server.py --port 8765 --out /tmp/captures/codex \\
        --call exec_command='{"cmd": "echo hello"}'
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization", "api-key"}
ANSWER_TEXT = "Hello from the capture server."


def mask_headers(headers: Any) -> dict[str, str]:
    """Every header, with the value of each secret one replaced by its length and first characters."""
    masked: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in SECRET_HEADERS:
            value = f"<masked {len(value)} chars, starts {value[:10]!r}>"
        masked[lower] = value
    return masked


def decode_body(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "zstd":
        import zstandard  # type: ignore[import-not-found]  # only when a client compresses with zstd

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(raw))
    return raw


def sse(event: str | None, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


# --- which tool to call -------------------------------------------------------------------------------------


def offered_tool_names(body: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("function"), dict):
            names.add(str(tool["function"].get("name")))
        if "name" in tool:
            names.add(str(tool["name"]))
    return names


def carries_tool_result(body: dict[str, Any]) -> bool:
    """True when the conversation already holds a tool result (any dialect): the answer is then plain text."""
    text = json.dumps(body.get("messages") or body.get("input") or [])
    return any(
        marker in text
        for marker in (
            '"tool_result"',
            '"function_call_output"',
            '"role": "tool"',
            '"custom_tool_call_output"',
        )
    )


def pick_call(body: dict[str, Any], calls: dict[str, Any]) -> tuple[str, Any] | None:
    if carries_tool_result(body):
        return None
    offered = offered_tool_names(body)
    for name, arguments in calls.items():
        if name in offered:
            return name, arguments
    return None


# --- answers per dialect ------------------------------------------------------------------------------------


def usage_messages() -> dict[str, int]:
    return {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def messages_json(body: dict[str, Any], call: tuple[str, Any] | None, n: int) -> dict[str, Any]:
    content: list[dict[str, Any]]
    if call:
        content = [{"type": "tool_use", "id": f"toolu_{n:04d}", "name": call[0], "input": call[1]}]
    else:
        content = [{"type": "text", "text": ANSWER_TEXT}]
    return {
        "id": f"msg_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-sonnet-4-5"),
        "content": content,
        "stop_reason": "tool_use" if call else "end_turn",
        "stop_sequence": None,
        "usage": usage_messages(),
    }


def messages_stream(body: dict[str, Any], call: tuple[str, Any] | None, n: int) -> Iterator[bytes]:
    message = messages_json(body, call, n)
    start = dict(message, content=[], stop_reason=None, usage=dict(usage_messages(), output_tokens=1))
    yield sse("message_start", {"type": "message_start", "message": start})
    if call:
        block = {"type": "tool_use", "id": f"toolu_{n:04d}", "name": call[0], "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(call[1])}
    else:
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": ANSWER_TEXT}
    yield sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    yield sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield sse("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 7}})
    yield sse("message_stop", {"type": "message_stop"})


def chat_json(body: dict[str, Any], call: tuple[str, Any] | None, n: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None if call else ANSWER_TEXT}
    if call:
        message["tool_calls"] = [
            {
                "id": f"call_{n:04d}",
                "type": "function",
                "function": {"name": call[0], "arguments": json.dumps(call[1])},
            }
        ]
    return {
        "id": f"chatcmpl-{n:04d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "claude-sonnet-4-5"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }


def chat_stream(body: dict[str, Any], call: tuple[str, Any] | None, n: int) -> Iterator[bytes]:
    base = {
        "id": f"chatcmpl-{n:04d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "claude-sonnet-4-5"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse(None, dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}]))

    yield chunk({"role": "assistant", "content": ""})
    if call:
        function = {"name": call[0], "arguments": json.dumps(call[1])}
        yield chunk(
            {"tool_calls": [{"index": 0, "id": f"call_{n:04d}", "type": "function", "function": function}]}
        )
        yield chunk({}, "tool_calls")
    else:
        yield chunk({"content": ANSWER_TEXT})
        yield chunk({}, "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
        yield sse(None, dict(base, choices=[], usage=usage))
    yield sse(None, "[DONE]")


def responses_output(call: tuple[str, Any] | None, n: int) -> list[dict[str, Any]]:
    if call:
        return [
            {
                "type": "function_call",
                "id": f"fc_{n:04d}",
                "call_id": f"call_{n:04d}",
                "name": call[0],
                "arguments": json.dumps(call[1]),
                "status": "completed",
            }
        ]
    return [
        {
            "type": "message",
            "id": f"msg_{n:04d}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": ANSWER_TEXT, "annotations": []}],
        }
    ]


def responses_json(body: dict[str, Any], call: tuple[str, Any] | None, n: int) -> dict[str, Any]:
    return {
        "id": f"resp_{n:04d}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model", "claude-sonnet-4-5"),
        "output": responses_output(call, n),
        "usage": {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 19,
        },
    }


def responses_stream(body: dict[str, Any], call: tuple[str, Any] | None, n: int) -> Iterator[bytes]:
    final = responses_json(body, call, n)
    seq = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        return sse(kind, dict({"type": kind, "sequence_number": next(seq)}, **fields))

    yield event("response.created", response=dict(final, status="in_progress", output=[], usage=None))
    yield event("response.in_progress", response=dict(final, status="in_progress", output=[], usage=None))
    item = final["output"][0]
    if call:
        yield event(
            "response.output_item.added", output_index=0, item=dict(item, arguments="", status="in_progress")
        )
        yield event(
            "response.function_call_arguments.delta",
            output_index=0,
            item_id=item["id"],
            delta=item["arguments"],
        )
        yield event(
            "response.function_call_arguments.done",
            output_index=0,
            item_id=item["id"],
            arguments=item["arguments"],
        )
    else:
        yield event(
            "response.output_item.added", output_index=0, item=dict(item, content=[], status="in_progress")
        )
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"output_index": 0, "item_id": item["id"], "content_index": 0}
        yield event("response.content_part.added", part=part, **where)
        yield event("response.output_text.delta", delta=ANSWER_TEXT, logprobs=[], **where)
        yield event("response.output_text.done", text=ANSWER_TEXT, logprobs=[], **where)
        yield event("response.content_part.done", part=dict(part, text=ANSWER_TEXT), **where)
    yield event("response.output_item.done", output_index=0, item=item)
    yield event("response.completed", response=final)


# --- the server ---------------------------------------------------------------------------------------------


class CaptureHandler(BaseHTTPRequestHandler):
    server: CaptureServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"capture: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

    def do_GET(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.handle_any()

    def do_HEAD(self) -> None:
        self.handle_any()

    def do_DELETE(self) -> None:
        self.handle_any()

    def do_PUT(self) -> None:
        self.handle_any()

    def handle_any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(decode_body(raw, (self.headers.get("content-encoding") or "").lower()))
            except Exception as exc:  # a body we cannot read is recorded as text, not refused
                body = {"_unparsed": raw[:2000].decode("latin-1"), "_error": repr(exc)}
        n = self.server.record(self.command, self.path, self.headers, body)
        path = urlsplit(self.path).path
        if self.command == "HEAD":
            self.reply_bytes(200, b"", "text/plain")
            return
        if not isinstance(body, dict):
            body = {}
        call = pick_call(body, self.server.calls)
        stream = bool(body.get("stream"))
        if path.endswith("/messages/count_tokens"):
            self.reply_json({"input_tokens": 42})
        elif path.endswith("/messages"):
            self.reply(stream, messages_stream(body, call, n), messages_json(body, call, n))
        elif path.endswith("/chat/completions"):
            self.reply(stream, chat_stream(body, call, n), chat_json(body, call, n))
        elif path.endswith("/responses"):
            self.reply(stream, responses_stream(body, call, n), responses_json(body, call, n))
        elif path.endswith("/models"):
            self.reply_json({"object": "list", "data": [{"id": "claude-sonnet-4-5", "object": "model"}]})
        else:
            self.reply_json({"error": {"type": "not_found", "message": f"capture server: no {path}"}}, 404)

    def reply(self, stream: bool, events: Iterator[bytes], whole: dict[str, Any]) -> None:
        if not stream:
            self.reply_json(whole)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def reply_json(self, data: Any, status: int = 200) -> None:
        self.reply_bytes(status, json.dumps(data).encode(), "application/json")

    def reply_bytes(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, out: Path, calls: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", port), CaptureHandler)
        self.out = out
        self.calls = calls
        self.count = itertools.count(1)
        self.lock = threading.Lock()

    def record(self, method: str, path: str, headers: Any, body: Any) -> int:
        with self.lock:
            n = next(self.count)
        name = urlsplit(path).path.strip("/").replace("/", "_") or "root"
        entry = {"n": n, "method": method, "path": path, "headers": mask_headers(headers), "body": body}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{n:03d}-{method}-{name}.json").write_text(json.dumps(entry, indent=2) + "\n")
        return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port, printed on stdout")
    parser.add_argument("--out", type=Path, required=True, help="folder for the recorded requests")
    parser.add_argument(
        "--call", action="append", default=[], metavar="NAME=JSON", help="answer with this call"
    )
    args = parser.parse_args()
    calls = {name: json.loads(arguments) for name, arguments in (c.split("=", 1) for c in args.call)}
    server = CaptureServer(args.port, args.out, calls)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
