"""The cloud wire formats of `upstream_wire.py`: event-stream frames, SigV4, quota headers."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest

from tests.integration.upstream_wire import (
    Quota,
    bedrock_chunk,
    decode_event_stream,
    encode_event_frame,
    parse_sigv4,
    sigv4_signature,
)


def test_frame_layout_and_crcs_follow_the_event_stream_format():
    frame = encode_event_frame({":event-type": "chunk"}, b"{}")

    total, headers_length, prelude_crc = struct.unpack_from(">III", frame)
    assert total == len(frame) == 12 + headers_length + 2 + 4
    assert headers_length == 1 + len(":event-type") + 1 + 2 + len("chunk")
    assert prelude_crc == zlib.crc32(frame[:8])
    assert frame[12:13] == bytes([len(":event-type")])
    assert frame[24] == 7  # string header
    assert frame[-6:-4] == b"{}"
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])


def test_bedrock_chunk_wraps_the_event_in_base64_bytes():
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "é"}}
    [(headers, payload)] = decode_event_stream(bedrock_chunk(event) * 1)

    assert headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert json.loads(base64.b64decode(json.loads(payload)["bytes"])) == event


def test_decoder_refuses_a_corrupted_frame():
    frame = bytearray(bedrock_chunk({"type": "ping"}) * 2)
    assert len(decode_event_stream(bytes(frame))) == 2
    frame[-10] ^= 1
    with pytest.raises(ValueError, match="message CRC"):
        decode_event_stream(bytes(frame))


# AWS's published SigV4 test suite, case "get-vanilla" (aws-sig-v4-test-suite).
_VANILLA = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=host;x-amz-date, "
    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
)


def test_sigv4_matches_aws_test_suite_vector():
    sigv4 = parse_sigv4(_VANILLA)
    assert sigv4 is not None
    assert (sigv4.access_key_id, sigv4.date, sigv4.region, sigv4.service) == (
        "AKIDEXAMPLE",
        "20150830",
        "us-east-1",
        "service",
    )
    signature = sigv4_signature(
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        sigv4=sigv4,
        method="GET",
        raw_path="/",
        raw_query="",
        headers=[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
        content=b"",
    )
    assert signature == sigv4.signature
    wrong = sigv4_signature(
        secret_access_key="another",
        sigv4=sigv4,
        method="GET",
        raw_path="/",
        raw_query="",
        headers=[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
        content=b"",
    )
    assert wrong != sigv4.signature


def test_other_authorization_schemes_are_not_sigv4():
    assert parse_sigv4("Bearer abc") is None
    assert parse_sigv4("") is None


def test_quota_headers_leave_out_what_is_unset():
    assert Quota().headers() == {
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
    }
    extra = Quota.extra_usage(1800000000).headers()
    assert extra["anthropic-ratelimit-unified-status"] == "rejected"
    assert extra["anthropic-ratelimit-unified-overage-status"] == "allowed"
    assert extra["anthropic-ratelimit-unified-overage-in-use"] == "true"
    assert extra["anthropic-ratelimit-unified-reset"] == "1800000000"
