"""A fake Anthropic upstream for integration tests: the real Claude Code CLI talks to it.

`MockAnthropic` serves a Starlette app with uvicorn from a background thread on 127.0.0.1 and a
free port; point the CLI at it with `ANTHROPIC_BASE_URL=mock.url`. It answers `POST /v1/messages`
with scripted replies (streamed as Anthropic's SSE event sequence, or as one Message JSON), fails
on demand, records every request, and answers every other path with 404::

    with MockAnthropic() as mock:
        mock.queue(Reply(text="Hello there", usage=Usage(input_tokens=21, output_tokens=7)))
        ...  # run the CLI with ANTHROPIC_BASE_URL=mock.url
        assert mock.last_request.bearer_token == "sk-ant-oat01-test"

With nothing queued it answers `echo_text(<last user text>)`. See shared/CLAUDE-CODE.md for what
the CLI sends and how it reacts to each failure.

The same replies also answer the other ways to Claude (CLAUDE-CODE.md §13), each on its own paths:
Amazon Bedrock (`/model/<id>/invoke-with-response-stream` in AWS event-stream frames, `/invoke`,
`GET /inference-profiles`; SigV4 checked against `add_aws_key`, or a Bedrock API key as bearer),
Google Vertex AI (`.../models/<M>:streamRawPredict` and `:rawPredict`, with the access tokens its
`POST /token` exchange issued) and Microsoft Foundry (`/v1/messages` with `x-api-key`). Replies,
failures and quota headers can be scripted per credential (`RecordedRequest.credential`)::

    mock.queue(ErrorReply.usage_limit(reset_at), credential="sk-ant-oat01-A")
    mock.set_quota("sk-ant-oat01-C", Quota.extra_usage(reset=reset_at))
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from tests.integration.upstream_wire import Quota, SigV4, bedrock_chunk, parse_sigv4, sigv4_signature

__all__ = [
    "BEDROCK_PROFILES",
    "AuthScheme",
    "ErrorReply",
    "Hang",
    "MockAnthropic",
    "Quota",
    "RecordedRequest",
    "Reply",
    "RequestKind",
    "Responder",
    "Scripted",
    "StopReason",
    "ToolUse",
    "Usage",
    "counted_tokens",
    "echo_text",
    "google_access_token",
]

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]
RequestKind = Literal[
    "messages",
    "count_tokens",
    "bedrock",
    "bedrock_profiles",
    "vertex",
    "vertex_count_tokens",
    "token",
    "other",
]
AuthScheme = Literal["bearer", "x-api-key", "sigv4"]

_BEDROCK_PATH = re.compile(r"/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream)")
_VERTEX_PATH = re.compile(
    r"(?:/v1)?/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)"
    r"/publishers/anthropic/models/(?P<model>[^/:]+):(?P<action>streamRawPredict|rawPredict)"
)
# Bedrock's system-defined cross-region profiles for Claude, as `ListInferenceProfiles` lists them.
BEDROCK_PROFILES = (
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us.anthropic.claude-opus-4-1-20250805-v1:0",
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


def counted_tokens(body: Mapping[str, Any]) -> int:
    """What the mock's count endpoint answers for a body: a function of the body alone."""
    return max(1, len(json.dumps(body, sort_keys=True)) // 4)


def echo_text(prompt: str) -> str:
    """Return the text the mock answers when nothing is queued: a function of the prompt alone."""
    return f"Echo: {prompt}"


def google_access_token(subject_token: str) -> str:
    """The access token the mock's `POST /token` exchange issues for a subject token."""
    return "ya29.mock-" + hashlib.sha256(subject_token.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Usage:
    """Token counts the mock reports; the CLI passes them on in its `ResultMessage.usage`."""

    input_tokens: int = 10
    output_tokens: int = 5
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True)
class ToolUse:
    """One `tool_use` content block; `id` defaults to a per-mock sequence `toolu_mock_01`, ..."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful answer to one `POST /v1/messages`.

    `text=None` with no `tool_uses` answers `echo_text(<last user text>)`; `text=""` sends no
    text block before tool uses. `stop_reason` defaults to `tool_use` when there are tool uses,
    else `end_turn`; `model` to the request's.

    Streaming shape: `chunk_size` characters (of text, thinking, or the tool input's JSON) per
    delta; `delay` seconds between deltas; `first_byte_delay` seconds before the response headers
    (non-streaming answers too). `drop_after=N` closes the connection after N deltas (or all, if
    fewer), without `message_stop`; with a `delay` the CLI sees those deltas before the drop.
    `stall_after=N` sends N deltas, then nothing until `reset()` or `stop()`, then closes.
    `headers` are added to the response (e.g. rate-limit state).
    """

    text: str | None = None
    tool_uses: Sequence[ToolUse] = ()
    thinking: str | None = None
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    chunk_size: int = 4
    delay: float = 0.0
    first_byte_delay: float = 0.0
    drop_after: int | None = None
    stall_after: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if self.drop_after is not None and self.stall_after is not None:
            raise ValueError("a reply can drop or stall, not both")


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with Anthropic's body `{"type": "error", "error": {"type", "message"}}`."""

    status: int
    error_type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)
    first_byte_delay: float = 0.0

    @classmethod
    def unauthorized(cls, message: str = "Invalid bearer token") -> ErrorReply:
        """401 `authentication_error`, as for an expired or revoked OAuth token."""
        return cls(401, "authentication_error", message)

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> ErrorReply:
        """429 `rate_limit_error` with a `retry-after` header (seconds)."""
        return cls(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            {"retry-after": str(retry_after)},
        )

    @classmethod
    def usage_limit(cls, reset_at: int, claim: str = "five_hour") -> ErrorReply:
        """429 for an exhausted subscription: the CLI does not retry and reports `reset_at`."""
        return cls(
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit. Please try again later.",
            {
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": str(reset_at),
                "anthropic-ratelimit-unified-representative-claim": claim,
            },
        )

    @classmethod
    def server_error(cls) -> ErrorReply:
        """500 `api_error`."""
        return cls(500, "api_error", "Internal server error")

    @classmethod
    def overloaded(cls) -> ErrorReply:
        """529 `overloaded_error`."""
        return cls(529, "overloaded_error", "Overloaded")


@dataclass(frozen=True)
class Hang:
    """Accept the request and never answer; `reset()` or `stop()` closes the connection."""


Scripted = Reply | ErrorReply | Hang
Responder = Callable[["RecordedRequest"], Scripted]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the mock received it.

    Header names are lower-case; `body` is the parsed JSON (None if absent or not JSON);
    `tcp_nodelay` is the socket option read back on its connection; `received_at` is
    `time.monotonic()` on arrival.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    content: bytes
    body: Any
    tcp_nodelay: bool | None
    received_at: float
    raw_path: str = ""
    raw_query: str = ""
    signature_valid: bool | None = None

    @property
    def kind(self) -> RequestKind:
        """Which upstream call this is, by method and path."""
        if self.method == "GET" and self.path.rstrip("/").endswith("/inference-profiles"):
            return "bedrock_profiles"
        if self.method != "POST":
            return "other"
        # Foundry's base URL ends in /anthropic (https://<resource>.services.ai.azure.com/anthropic).
        path = self.path.removeprefix("/anthropic")
        if path == "/v1/messages":
            return "messages"
        if path == "/v1/messages/count_tokens":
            return "count_tokens"
        if _BEDROCK_PATH.fullmatch(self.path):
            return "bedrock"
        vertex = _VERTEX_PATH.fullmatch(self.path)
        if vertex:
            return "vertex_count_tokens" if vertex["model"] == "count-tokens" else "vertex"
        if self.path == "/token":
            return "token"
        return "other"

    @property
    def is_messages(self) -> bool:
        """Whether this is a Messages API call (`POST /v1/messages`)."""
        return self.kind == "messages"

    @property
    def is_model_call(self) -> bool:
        """Whether Claude is asked for an answer, on any upstream (Messages, Bedrock, Vertex)."""
        return self.kind in ("messages", "bedrock", "vertex")

    @property
    def model(self) -> str | None:
        """The model asked for: the body's `model`, or the model id in a Bedrock or Vertex path."""
        if isinstance(self.body, dict) and isinstance(self.body.get("model"), str):
            return str(self.body["model"])
        match = _BEDROCK_PATH.fullmatch(self.path) or _VERTEX_PATH.fullmatch(self.path)
        return match["model"] if match else None

    @property
    def region(self) -> str | None:
        """The region of a Vertex path or of a SigV4 credential scope."""
        vertex = _VERTEX_PATH.fullmatch(self.path)
        if vertex:
            return vertex["region"]
        return self.sigv4.region if self.sigv4 else None

    @property
    def project(self) -> str | None:
        """The Google Cloud project of a Vertex path."""
        vertex = _VERTEX_PATH.fullmatch(self.path)
        return vertex["project"] if vertex else None

    @property
    def api_key(self) -> str | None:
        """The `x-api-key` header (Console API keys, Foundry)."""
        return self.headers.get("x-api-key") or None

    @property
    def sigv4(self) -> SigV4 | None:
        """The parsed `Authorization: AWS4-HMAC-SHA256 ...` header, if any."""
        return parse_sigv4(self.headers.get("authorization", ""))

    @property
    def auth_scheme(self) -> AuthScheme | None:
        """How the request authenticated: bearer token, `x-api-key`, or an AWS SigV4 signature."""
        if self.sigv4 is not None:
            return "sigv4"
        if self.bearer_token is not None:
            return "bearer"
        return "x-api-key" if self.api_key is not None else None

    @property
    def credential(self) -> str | None:
        """Who asked: the bearer token, the `x-api-key` value, or the SigV4 access key id."""
        if self.sigv4 is not None:
            return self.sigv4.access_key_id
        return self.bearer_token or self.api_key

    @property
    def form(self) -> dict[str, str]:
        """An `application/x-www-form-urlencoded` body as a dict (the token exchange's)."""
        return dict(parse_qsl(self.content.decode(errors="replace"), keep_blank_values=True))

    @property
    def streamed(self) -> bool:
        """Whether the answer is streamed: `stream` in the body, or Bedrock's or Vertex's stream path."""
        return self.stream or self.path.endswith(("/invoke-with-response-stream", ":streamRawPredict"))

    @property
    def is_count_tokens(self) -> bool:
        """Whether this asks to count tokens (`POST /v1/messages/count_tokens`)."""
        return self.method == "POST" and self.path == "/v1/messages/count_tokens"

    @property
    def stream(self) -> bool:
        """Whether the body asked for a streamed answer."""
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def bearer_token(self) -> str | None:
        """The token of an `Authorization: Bearer` header, if any."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    @property
    def user_text(self) -> str | None:
        """The last text block of the last `role: user` message (what the echo answers)."""
        if not isinstance(self.body, dict):
            return None
        for message in reversed(self.body.get("messages") or []):
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            texts = [
                block.get("text", "")
                for block in content or []
                if isinstance(block, dict) and block.get("type") == "text"
            ]
            # The CLI may prepend <system-reminder> blocks; the prompt is the last text block.
            return texts[-1] if texts else None
        return None


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass(frozen=True)
class _Message:
    """A reply resolved against its request: everything both answer shapes need."""

    id: str
    model: str
    thinking: str | None
    text: str | None
    tool_uses: Sequence[tuple[str, ToolUse]]
    stop_reason: StopReason
    stop_sequence: str | None
    usage: Usage
    chunk_size: int

    def content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.thinking is not None:
            blocks.append({"type": "thinking", "thinking": self.thinking, "signature": "mock-sig"})
        if self.text is not None:
            blocks.append({"type": "text", "text": self.text})
        blocks.extend(
            {"type": "tool_use", "id": tool_id, "name": tool.name, "input": dict(tool.input)}
            for tool_id, tool in self.tool_uses
        )
        return blocks

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content(),
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "cache_creation_input_tokens": self.usage.cache_creation_input_tokens,
                "cache_read_input_tokens": self.usage.cache_read_input_tokens,
                "output_tokens": self.usage.output_tokens,
            },
        }

    def events(self, framing: Literal["sse", "aws"] = "sse") -> list[tuple[bytes, bool]]:
        """Anthropic's stream, each event with whether it is a `content_block_delta`.

        `sse` frames each event as server-sent events (Messages API, Vertex); `aws` as AWS
        event-stream chunks (Bedrock).
        """
        if framing == "aws":
            return [(bedrock_chunk(event), is_delta) for event, is_delta in self._events()]
        return [(_sse(event["type"], event), is_delta) for event, is_delta in self._events()]

    def _events(self) -> list[tuple[dict[str, Any], bool]]:
        start = self.json() | {"content": [], "stop_reason": None, "stop_sequence": None}
        # Anthropic puts a provisional output count in message_start; message_delta has the total.
        start["usage"] = start["usage"] | {"output_tokens": min(1, self.usage.output_tokens)}
        events: list[tuple[dict[str, Any], bool]] = [({"type": "message_start", "message": start}, False)]
        for index, block in enumerate(self.content()):
            kind = block["type"]
            if kind == "thinking":
                opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [
                    {"type": "thinking_delta", "thinking": piece}
                    for piece in _chunks(block["thinking"], self.chunk_size)
                ]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "text":
                opening = {"type": "text", "text": ""}
                deltas = [
                    {"type": "text_delta", "text": piece} for piece in _chunks(block["text"], self.chunk_size)
                ]
            else:
                opening = block | {"input": {}}
                arguments = json.dumps(block["input"]) if block["input"] else ""
                # Anthropic opens every tool input with an empty partial_json.
                deltas = [
                    {"type": "input_json_delta", "partial_json": piece}
                    for piece in ["", *_chunks(arguments, self.chunk_size)]
                ]
            events.append(({"type": "content_block_start", "index": index, "content_block": opening}, False))
            if index == 0:
                events.append(({"type": "ping"}, False))
            events.extend(
                ({"type": "content_block_delta", "index": index, "delta": delta}, True) for delta in deltas
            )
            events.append(({"type": "content_block_stop", "index": index}, False))
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence},
            "usage": {"output_tokens": self.usage.output_tokens},
        }
        events.append((delta, False))
        events.append(({"type": "message_stop"}, False))
        return events


@dataclass
class _Connection:
    """One accepted TCP connection, so a handler can close it (drop, hang release, stop)."""

    transport: asyncio.Transport
    tcp_nodelay: bool
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class MockAnthropic:
    """A fake Anthropic Messages API on 127.0.0.1, served from a background thread.

    Use it as a context manager, or `start()` / `stop()`. The test thread and the server thread
    share state under one lock, so any method may be called while requests are in flight.
    `tcp_nodelay=False` turns Nagle's algorithm back on, to measure what it costs.
    """

    def __init__(self, *, tcp_nodelay: bool = True) -> None:
        self._tcp_nodelay = tcp_nodelay
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: list[Scripted] = []
        self._fallback: Scripted | Responder | None = None
        self._credential_queues: dict[str, list[Scripted]] = {}
        self._credential_fallbacks: dict[str, Scripted | Responder] = {}
        self._quotas: dict[str, Quota] = {}
        self._aws_secrets: dict[str, str] = {}
        # Issued access tokens outlive reset(): a warm CLI keeps the token it was given.
        self._google_tokens: set[str] = set()
        self._refused_subjects: set[str] = set()
        self._requests: list[RecordedRequest] = []
        self._message_ids = itertools.count(1)
        self._tool_ids = itertools.count(1)
        self._release = asyncio.Event()
        self._connections: dict[tuple[str, int], _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the mock listens on (0 before `start()`)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give the CLI as `ANTHROPIC_BASE_URL`."""
        if not self._port:
            raise RuntimeError("MockAnthropic is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Serve on a free port and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("MockAnthropic is already started")
        with self._lock:
            self._release = asyncio.Event()  # a previous stop() left the old one set
        # Binding here, not in uvicorn, gives a free port with no race and no retry.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            http=self._protocol_class(),
            ws="none",
            lifespan="off",
            # uvicorn's log_config, log_level and access_log=False all reconfigure process-wide
            # loggers that the gateway's own tests also use; the protocol turns access logs off.
            log_config=None,
            log_level=None,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"mock-anthropic-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("MockAnthropic did not start")
            time.sleep(0.002)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection (streams, hangs included) and stop the server thread."""
        server, thread, loop = self._server, self._thread, self._loop
        if server is None or thread is None:
            return
        if loop is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so nothing is left to abort.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._abort_all, self._release)
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("MockAnthropic server thread did not stop")
        self._server = self._thread = self._loop = None
        self._port = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------------

    def queue(self, *replies: Scripted, credential: str | None = None) -> None:
        """Answer the next model calls with these, in order.

        With `credential` (a bearer token, `x-api-key` value, AWS access key id, Bedrock API key or
        Vertex access token: `RecordedRequest.credential`) only calls made with it take them; its
        own queue and `always` come before the shared ones.
        """
        with self._lock:
            if credential is None:
                self._queue.extend(replies)
            else:
                self._credential_queues.setdefault(credential, []).extend(replies)

    def always(self, reply: Scripted | Responder | None, *, credential: str | None = None) -> None:
        """Answer with `reply` (or `reply(request)`) whenever the queue is empty; None: echo.

        With `credential`, only for calls made with it (None then removes its own fallback).
        """
        with self._lock:
            if credential is None:
                self._fallback = reply
            elif reply is None:
                self._credential_fallbacks.pop(credential, None)
            else:
                self._credential_fallbacks[credential] = reply

    def set_quota(self, credential: str, quota: Quota | None) -> None:
        """Send `quota`'s `anthropic-ratelimit-unified-*` headers on every answer to `credential`.

        They go on successes and failures alike; a reply's own `headers` win. None: send none.
        """
        with self._lock:
            if quota is None:
                self._quotas.pop(credential, None)
            else:
                self._quotas[credential] = quota

    def add_aws_key(self, access_key_id: str, secret_access_key: str) -> None:
        """Check SigV4 signatures made with this access key id against this secret.

        A request signed with it that does not verify is refused with 403
        `InvalidSignatureException`; unknown access key ids are accepted unverified.
        """
        with self._lock:
            self._aws_secrets[access_key_id] = secret_access_key

    def reset(self) -> None:
        """Forget queued replies, the fallback and recorded requests; end every hang and stall."""
        with self._lock:
            self._queue.clear()
            self._fallback = None
            self._credential_queues.clear()
            self._credential_fallbacks.clear()
            self._quotas.clear()
            self._aws_secrets.clear()
            self._refused_subjects.clear()
            self._requests.clear()
            self._message_ids = itertools.count(1)
            self._tool_ids = itertools.count(1)
            released, self._release = self._release, asyncio.Event()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(released.set)

    def refuse_subject_token(self, subject_token: str) -> None:
        """Refuse this subject token at the token exchange (400 `invalid_grant`): a broken Vertex file."""
        with self._lock:
            self._refused_subjects.add(subject_token)

    # -- inspection --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last `reset()`, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """Only the `POST /v1/messages` requests."""
        return [request for request in self.requests if request.is_messages]

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """Every call that asks Claude for an answer: Messages, Bedrock invoke, Vertex predict."""
        return [request for request in self.requests if request.is_model_call]

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; LookupError if there is none."""
        with self._lock:
            if not self._requests:
                raise LookupError("MockAnthropic has received no request")
            return self._requests[-1]

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `n` requests (any path) arrived and return them, or TimeoutError."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"{len(self._requests)} of {n} requests after {timeout} s")
            return list(self._requests)

    async def wait_for_requests_async(self, n: int, wait: float = 10.0) -> list[RecordedRequest]:
        """`wait_for_requests` for async tests, without blocking their event loop."""
        return await asyncio.to_thread(self.wait_for_requests, n, wait)

    # -- server side: runs on the server thread's event loop ---------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve(sockets=[sock]))
        finally:
            sock.close()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _protocol_class(self) -> type[H11Protocol]:
        mock = self

        class Protocol(H11Protocol):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.access_log = False

            # asyncio already sets TCP_NODELAY on accepted sockets; we set it ourselves and read it
            # back so a test can prove it, and so `tcp_nodelay=False` can measure Nagle's cost.
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(mock._tcp_nodelay))
                nodelay = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                host, port = transport.get_extra_info("peername")[:2]
                mock._connections[(host, port)] = _Connection(transport, nodelay)
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                connection = mock._connections.pop(self.client or ("", 0), None)
                if connection is not None:
                    connection.closed.set()
                super().connection_lost(exc)

        return Protocol

    def _abort_all(self, release: asyncio.Event) -> None:
        release.set()
        for connection in list(self._connections.values()):
            connection.transport.abort()

    def _app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    async def _handle(self, request: Request) -> Response:
        content = await request.body()
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        client = request.client
        connection = self._connections.get((client.host, client.port)) if client else None
        record = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=MappingProxyType(dict(request.query_params)),
            headers=MappingProxyType(dict(request.headers)),
            content=content,
            body=body,
            tcp_nodelay=connection.tcp_nodelay if connection else None,
            received_at=time.monotonic(),
            raw_path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
        )
        record = self._verify_signature(record, request)
        with self._changed:
            self._requests.append(record)
            self._changed.notify_all()
            release = self._release
        kind = record.kind
        if kind == "count_tokens" and isinstance(body, dict):
            return JSONResponse({"input_tokens": counted_tokens(body)})
        if kind == "vertex_count_tokens" and isinstance(body, dict):
            return JSONResponse({"input_tokens": counted_tokens(body)})
        if kind == "bedrock_profiles":
            return JSONResponse(_bedrock_profiles(record.region))
        if kind == "token":
            return self._exchange_token(record)
        if not record.is_model_call:
            return _error(404, "not_found_error", f"Not found: {record.method} {record.path}")
        if record.signature_valid is False:
            return _bedrock_error(403, "InvalidSignatureException", "The request signature does not match")
        if kind == "vertex" and not self._google_token_issued(record.bearer_token):
            return _vertex_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if not _is_messages_body(body, path_model=kind != "messages"):
            return _error(400, "invalid_request_error", "expected model, max_tokens and messages")
        scripted = self._next(record)
        if isinstance(scripted, Hang):
            await self._hold(release, request)
            return await self._drop(connection)
        if scripted.first_byte_delay and await self._pause(release, scripted.first_byte_delay):
            return await self._drop(connection)
        with self._lock:
            quota = self._quotas.get(record.credential or "")
        quota_headers = quota.headers() if quota is not None else {}
        if isinstance(scripted, ErrorReply):
            headers = {**quota_headers, **scripted.headers}
            if kind == "bedrock":
                return _bedrock_error(
                    scripted.status,
                    _BEDROCK_ERRORS.get(scripted.status, "ServiceException"),
                    scripted.message,
                    headers,
                )
            return _error(scripted.status, scripted.error_type, scripted.message, headers)
        message = self._resolve(scripted, record)
        headers = {"request-id": f"req_{message.id}", **quota_headers, **scripted.headers}
        if not record.streamed:
            return JSONResponse(message.json(), headers=headers)
        if kind == "bedrock":
            return StreamingResponse(
                self._stream(scripted, message.events("aws"), connection, release),
                media_type="application/vnd.amazon.eventstream",
                headers={"x-amzn-bedrock-content-type": "application/json", **headers},
            )
        return StreamingResponse(
            self._stream(scripted, message.events(), connection, release),
            media_type="text/event-stream; charset=utf-8",
            headers={"cache-control": "no-cache", **headers},
        )

    def _next(self, record: RecordedRequest) -> Scripted:
        credential = record.credential or ""
        with self._lock:
            own = self._credential_queues.get(credential)
            if own:
                return own.pop(0)
            fallback = self._credential_fallbacks.get(credential)
            if fallback is None:
                if self._queue:
                    return self._queue.pop(0)
                fallback = self._fallback
        if callable(fallback):
            return fallback(record)
        return fallback if fallback is not None else Reply()

    def _verify_signature(self, record: RecordedRequest, request: Request) -> RecordedRequest:
        """Record whether a SigV4 signature verifies with the secret `add_aws_key` gave."""
        sigv4 = record.sigv4
        with self._lock:
            secret = self._aws_secrets.get(sigv4.access_key_id) if sigv4 else None
        if sigv4 is None or secret is None:
            return record
        expected = sigv4_signature(
            secret_access_key=secret,
            sigv4=sigv4,
            method=record.method,
            raw_path=record.raw_path,
            raw_query=record.raw_query,
            headers=[
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
            ],
            content=record.content,
        )
        return dataclasses.replace(record, signature_valid=hmac.compare_digest(expected, sigv4.signature))

    def _exchange_token(self, record: RecordedRequest) -> Response:
        """Google's STS token exchange (RFC 8693), as an external-account credential file asks it."""
        form = record.form
        subject = form.get("subject_token", "")
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" or not subject:
            return JSONResponse({"error": "invalid_request", "error_description": "bad token exchange"}, 400)
        token = google_access_token(subject)
        with self._lock:
            refused = subject in self._refused_subjects
            if not refused:
                self._google_tokens.add(token)
        if refused:
            return JSONResponse({"error": "invalid_grant", "error_description": "subject token refused"}, 400)
        return JSONResponse(
            {
                "access_token": token,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 3600,
            }
        )

    def _google_token_issued(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and token in self._google_tokens

    def _resolve(self, reply: Reply, record: RecordedRequest) -> _Message:
        with self._lock:
            number = next(self._message_ids)
            tool_ids = [next(self._tool_ids) for _ in reply.tool_uses]
        text = reply.text
        if text is None and not reply.tool_uses:
            text = echo_text(record.user_text or "")
        elif text == "" and reply.tool_uses:
            text = None
        tools = [
            (tool.id or f"toolu_mock_{tool_id:02d}", tool)
            for tool_id, tool in zip(tool_ids, reply.tool_uses, strict=True)
        ]
        return _Message(
            id=f"msg_mock_{number:02d}",
            model=reply.model or record.model or "",
            thinking=reply.thinking,
            text=text,
            tool_uses=tools,
            stop_reason=reply.stop_reason or ("tool_use" if tools else "end_turn"),
            stop_sequence=reply.stop_sequence,
            usage=reply.usage,
            chunk_size=reply.chunk_size,
        )

    async def _stream(
        self,
        reply: Reply,
        events: list[tuple[bytes, bool]],
        connection: _Connection | None,
        release: asyncio.Event,
    ) -> AsyncIterator[bytes]:
        deltas = [index for index, (_, is_delta) in enumerate(events) if is_delta]
        first = deltas[0] if deltas else len(events)
        cut = _cut(deltas, reply.drop_after, reply.stall_after, len(events) - 2)
        for index, (event, is_delta) in enumerate(events):
            pause = (is_delta and index > first) or index == cut
            if pause and reply.delay and await self._pause(release, reply.delay):
                break
            if index == cut:
                if reply.stall_after is not None:
                    await release.wait()
                break
            yield event
        else:
            return
        # Closing the socket mid-body is what a broken upstream stream looks like to the client;
        # ending the generator instead would finish the chunked body cleanly.
        await self._close(connection)

    @staticmethod
    async def _pause(release: asyncio.Event, seconds: float) -> bool:
        """Sleep, or return True at once when `reset()` or `stop()` releases waiting requests."""
        try:
            await asyncio.wait_for(release.wait(), seconds)
        except TimeoutError:
            return False
        return True

    @staticmethod
    async def _hold(release: asyncio.Event, request: Request) -> None:
        """Wait until released or until the client goes away, whichever comes first."""
        waiters = [asyncio.ensure_future(release.wait()), asyncio.ensure_future(_gone(request))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    @staticmethod
    async def _close(connection: _Connection | None) -> None:
        """Close the client's connection and wait until uvicorn has seen it go."""
        if connection is not None:
            connection.transport.close()
            await connection.closed.wait()

    @classmethod
    async def _drop(cls, connection: _Connection | None) -> Response:
        await cls._close(connection)
        # uvicorn discards what is sent on a closed connection; Starlette still wants a response.
        return Response(status_code=204)


def _cut(
    deltas: Sequence[int], drop_after: int | None, stall_after: int | None, message_delta: int
) -> int | None:
    """Index of the first event a drop or stall withholds; None when the stream runs to its end."""
    after = drop_after if stall_after is None else stall_after
    if after is None:
        return None
    if not deltas:
        return message_delta
    if after == 0:
        return deltas[0]
    return deltas[min(after, len(deltas)) - 1] + 1


async def _gone(request: Request) -> None:
    # The body is already read, so the next ASGI message can only be http.disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _is_messages_body(body: Any, *, path_model: bool = False) -> bool:
    """A Messages body; Bedrock and Vertex name the model in the path instead of the body."""
    return (
        isinstance(body, dict)
        and (path_model or isinstance(body.get("model"), str))
        and isinstance(body.get("max_tokens"), int)
        and isinstance(body.get("messages"), list)
        and bool(body["messages"])
    )


def _error(status: int, error_type: str, message: str, headers: Mapping[str, str] = _EMPTY) -> JSONResponse:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    headers = {"request-id": "req_mock_error", **headers}
    return JSONResponse(body, status_code=status, headers=headers)


# What Bedrock calls each failure (the `x-amzn-ErrorType` header); the SDK goes by the status.
_BEDROCK_ERRORS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
    529: "ServiceUnavailableException",
}


def _bedrock_error(
    status: int, error_type: str, message: str, headers: Mapping[str, str] = _EMPTY
) -> JSONResponse:
    headers = {
        "x-amzn-requestid": "mock-request",
        "x-amzn-errortype": f"{error_type}:http://internal.amazon.com/",
        **headers,
    }
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _vertex_error(status: int, google_status: str, message: str) -> JSONResponse:
    body = {"error": {"code": status, "message": message, "status": google_status}}
    return JSONResponse(body, status_code=status)


def _bedrock_profiles(region: str | None) -> dict[str, Any]:
    """`ListInferenceProfiles`: the system-defined Claude profiles of the region's geography.

    A Bedrock API key does not name its region in the request: then every geography's profiles.
    """
    geographies = [region.split("-")[0]] if region else ["us", "eu", "apac"]
    summaries = []
    for geography, profile in itertools.product(geographies, BEDROCK_PROFILES):
        profile_id = profile.replace("us.", f"{geography}.", 1)
        summaries.append(
            {
                "inferenceProfileId": profile_id,
                "inferenceProfileName": profile_id,
                "inferenceProfileArn": f"arn:aws:bedrock:{region}:0:inference-profile/{profile_id}",
                "status": "ACTIVE",
                "type": "SYSTEM_DEFINED",
                "models": [
                    {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{profile.split('.', 1)[1]}"}
                ],
            }
        )
    return {"inferenceProfileSummaries": summaries}
