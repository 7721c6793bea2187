"""The official `openai` and `anthropic` clients over bytes made in the test, without a network.

Each client's transport is a `MockTransport` (of `httpx` for openai; of `httpx2`, the fork anthropic
uses, for anthropic) that answers every request with the given status and body, so the package's own
SSE decoder, stream accumulators and error handling read exactly those bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

import anthropic
import httpx
import httpx2
import openai

SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}


def _http_client(body: bytes, status: int, headers: Mapping[str, str]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=dict(headers))

    return httpx.Client(transport=httpx.MockTransport(answer))


def _http2_client(body: bytes, status: int, headers: Mapping[str, str]) -> httpx2.Client:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers=dict(headers))

    return httpx2.Client(transport=httpx2.MockTransport(answer))


def openai_client(body: bytes, *, status: int = 200, headers: Mapping[str, str] = SSE) -> openai.OpenAI:
    """An OpenAI client that gets `body` for any request."""
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        max_retries=0,
        http_client=_http_client(body, status, headers),
    )


def anthropic_client(
    body: bytes, *, status: int = 200, headers: Mapping[str, str] = SSE
) -> anthropic.Anthropic:
    """An Anthropic client that gets `body` for any request."""
    return anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=_http2_client(body, status, headers),
    )
