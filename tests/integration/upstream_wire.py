"""Wire formats of the cloud upstreams the mock imitates: AWS event-stream frames, SigV4, quota headers.

Pure functions only (no sockets, no clock): `mock_anthropic.py` serves them, its tests check them
byte for byte, and the real Claude Code CLI proves them by decoding and signing against the mock.
Everything here is the standard library; botocore would add 100 MB of dependency for two small
algorithms that are specified exactly:

- event stream: https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html
- SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

__all__ = [
    "Quota",
    "SigV4",
    "bedrock_chunk",
    "decode_event_stream",
    "encode_event_frame",
    "parse_sigv4",
    "sigv4_signature",
]

# -- AWS event stream -------------------------------------------------------------------------------

_STRING_HEADER = 7


def encode_event_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, prelude CRC, string headers, payload, message CRC."""
    encoded = b""
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded += struct.pack(">B", len(name_bytes)) + name_bytes
        encoded += struct.pack(">BH", _STRING_HEADER, len(value_bytes)) + value_bytes
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return head + struct.pack(">I", zlib.crc32(head))


def bedrock_chunk(event: Mapping[str, Any]) -> bytes:
    """A Bedrock `invoke-with-response-stream` frame carrying one Anthropic stream event."""
    data = json.dumps(event, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(data).decode()}, separators=(",", ":")).encode()
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_event_frame(headers, payload)


def decode_event_stream(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split an event stream into (headers, payload) frames; ValueError on a bad length or CRC."""
    frames = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 16:
            raise ValueError("truncated prelude")
        total, headers_length = struct.unpack_from(">II", data, offset)
        (prelude_crc,) = struct.unpack_from(">I", data, offset + 8)
        if zlib.crc32(data[offset : offset + 8]) != prelude_crc:
            raise ValueError("prelude CRC mismatch")
        frame = data[offset : offset + total]
        if len(frame) != total:
            raise ValueError("truncated message")
        (message_crc,) = struct.unpack_from(">I", frame, total - 4)
        if zlib.crc32(frame[:-4]) != message_crc:
            raise ValueError("message CRC mismatch")
        headers: dict[str, str] = {}
        position, end = 12, 12 + headers_length
        while position < end:
            name_length = frame[position]
            name = frame[position + 1 : position + 1 + name_length].decode()
            position += 1 + name_length
            kind, value_length = struct.unpack_from(">BH", frame, position)
            if kind != _STRING_HEADER:
                raise ValueError(f"header type {kind} is not a string")
            position += 3
            headers[name] = frame[position : position + value_length].decode()
            position += value_length
        frames.append((headers, frame[end : total - 4]))
        offset += total
    return frames


# -- SigV4 --------------------------------------------------------------------------------------------

_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class SigV4:
    """The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_sigv4(authorization: str) -> SigV4 | None:
    """The SigV4 parts of an Authorization header, or None for any other scheme."""
    match = _SIGV4.fullmatch(authorization.strip())
    if match is None:
        return None
    return SigV4(
        access_key_id=match["key"],
        date=match["date"],
        region=match["region"],
        service=match["service"],
        signed_headers=tuple(match["signed"].split(";")),
        signature=match["signature"],
    )


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((_uri_encode(unquote(name)), _uri_encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def sigv4_signature(
    *,
    secret_access_key: str,
    sigv4: SigV4,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    content: bytes,
) -> str:
    """The signature AWS computes for a request (compare it with `sigv4.signature`).

    `raw_path` is the path as sent (percent-encoded); services other than S3 encode it once more
    in the canonical request, which is what AWS's SDKs sign.
    """
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    canonical_headers = "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in sigv4.signed_headers)
    payload_hash = values.get("x-amz-content-sha256", [hashlib.sha256(content).hexdigest()])[0]
    canonical_path = "/".join(_uri_encode(segment) for segment in raw_path.split("/"))
    canonical_request = "\n".join(
        [
            method,
            canonical_path,
            _canonical_query(raw_query),
            canonical_headers,
            ";".join(sigv4.signed_headers),
            payload_hash,
        ]
    )
    amz_date = values.get("x-amz-date", [""])[0]
    scope = f"{sigv4.date}/{sigv4.region}/{sigv4.service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (sigv4.date, sigv4.region, sigv4.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# -- subscription quota --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """A subscription's unified rate-limit state, sent as `anthropic-ratelimit-unified-*` headers.

    Resets are Unix seconds. None leaves a header out. `extra_usage(...)` is an answer billed past
    the plan limit: status rejected, overage allowed and in use, and the answer itself succeeds.
    """

    status: str = "allowed"
    reset: int | None = None
    representative_claim: str | None = "five_hour"
    five_hour_status: str | None = None
    five_hour_utilization: float | None = None
    five_hour_reset: int | None = None
    seven_day_status: str | None = None
    seven_day_utilization: float | None = None
    seven_day_reset: int | None = None
    overage_status: str | None = None
    overage_reset: int | None = None
    overage_in_use: bool | None = None
    overage_disabled_reason: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def extra_usage(cls, reset: int, *, claim: str = "five_hour") -> Quota:
        """Past the plan limit with extra usage on: the answer is billed as overage."""
        return cls(
            status="rejected",
            reset=reset,
            representative_claim=claim,
            five_hour_status="rejected",
            five_hour_utilization=1.0,
            five_hour_reset=reset,
            overage_status="allowed",
            overage_in_use=True,
        )

    @classmethod
    def exhausted(cls, reset: int, *, claim: str = "five_hour") -> Quota:
        """At the plan limit with extra usage off (goes with a 429)."""
        return cls(
            status="rejected",
            reset=reset,
            representative_claim=claim,
            five_hour_status="rejected",
            five_hour_utilization=1.0,
            five_hour_reset=reset,
            overage_status="rejected",
            overage_disabled_reason="org_level_disabled",
        )

    def headers(self) -> dict[str, str]:
        """The response headers Anthropic sends for this state; `extra` adds any other `<name>`."""
        prefix = "anthropic-ratelimit-unified-"
        values: dict[str, object | None] = {
            "status": self.status,
            "reset": self.reset,
            "representative-claim": self.representative_claim,
            "5h-status": self.five_hour_status,
            "5h-utilization": self.five_hour_utilization,
            "5h-reset": self.five_hour_reset,
            "7d-status": self.seven_day_status,
            "7d-utilization": self.seven_day_utilization,
            "7d-reset": self.seven_day_reset,
            "overage-status": self.overage_status,
            "overage-reset": self.overage_reset,
            "overage-in-use": None if self.overage_in_use is None else str(self.overage_in_use).lower(),
            "overage-disabled-reason": self.overage_disabled_reason,
            **self.extra,
        }
        return {prefix + name: str(value) for name, value in values.items() if value is not None}
