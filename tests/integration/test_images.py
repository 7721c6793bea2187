"""Images: data: URLs reach Claude as image blocks; http(s) image URLs are fetched by the gateway only
when the administrator allows it (IMAGE_URL_FETCH), within its limits, and are a clear 400 otherwise.

A small HTTP server on 127.0.0.1 plays the image host; the gateways that fetch from it are allowed
private addresses (IMAGE_URL_ALLOW_PRIVATE), which the default refuses.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from claude_code_api.answer.images import fetch_image, is_public_address, sniff_image_type
from claude_code_api.config import Settings
from claude_code_api.errors import InvalidRequestError
from tests.integration.gateway_harness import GatewayServer, make_settings
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest
from tests.integration.test_claude_processes import (  # noqa: F401 - autouse fixtures
    no_claude_process_outlives_the_test,
    no_run_left_answering,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
# 1x1 images: Claude Code decodes what it is given and drops what it cannot.
IMAGES = {
    "image/png": PNG,
    "image/jpeg": base64.b64decode(
        "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////"
        "////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA="
    ),
    "image/gif": base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"),
    "image/webp": base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="),
}
LIMIT = 2048


def data_url(media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(IMAGES[media_type]).decode()}"


def upstream_images(request: RecordedRequest) -> list[dict[str, Any]]:
    return [
        block["source"]
        for message in request.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "image"
    ]


# --- an image host -------------------------------------------------------------------------------


class _ImageHost(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path
        if path == "/cat.png":
            self._send(200, PNG, "image/png")
        elif path == "/cat.txt":  # a PNG whatever its server claims
            self._send(200, PNG, "text/plain")
        elif path == "/page.html":
            self._send(200, b"<html>not an image</html>", "text/html")
        elif path == "/big.png":
            self._send(200, PNG + b"\0" * LIMIT, "image/png")
        elif path == "/big-chunked.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()  # no Content-Length: the body ends with the connection
            for _ in range(4):
                self.wfile.write(PNG + b"\0" * (LIMIT // 2))
            self.close_connection = True
        elif path == "/slow.png":
            time.sleep(1.5)
            self._send(200, PNG, "image/png")
        elif path == "/moved.png":
            self.send_response(302)
            self.send_header("Location", "/cat.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def image_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHost)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fetching_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "image_url_fetch": True,
        "image_url_allow_private": True,
        "image_url_max_bytes": LIMIT,
        "image_url_timeout": 1.0,
        **overrides,
    }
    return make_settings(tmp_path / "fetching", "http://127.0.0.1:9", **values)


@pytest.fixture
def fetching_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A gateway that fetches image URLs, from this machine too."""
    settings = fetching_settings(tmp_path, anthropic_base_url=mock_anthropic.url)
    with GatewayServer(settings) as server:
        yield server


# --- data: URLs ----------------------------------------------------------------------------------


def test_data_urls_of_every_supported_type_reach_claude_as_images(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic
) -> None:
    content: Any = [{"type": "text", "text": "What are these?"}]
    content += [{"type": "image_url", "image_url": {"url": data_url(media_type)}} for media_type in IMAGES]
    with openai.OpenAI(api_key=api_key, base_url=gateway_server.base_url, max_retries=0) as client:
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": content}])

    assert upstream_images(mock_anthropic.last_request) == [
        {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}
        for media_type, data in IMAGES.items()
    ]


def test_image_url_is_refused_while_fetching_is_off(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic, image_host: str
) -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"{image_host}/cat.png"}},
    ]
    with (
        openai.OpenAI(api_key=api_key, base_url=gateway_server.base_url, max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": content}])

    assert raised.value.param == "messages[0].content[1]"
    assert "IMAGE_URL_FETCH" in raised.value.message
    assert not mock_anthropic.message_requests


# --- fetched image URLs, through each API --------------------------------------------------------


def test_fetched_image_url_reaches_claude_as_an_image_on_every_api(
    fetching_gateway: GatewayServer, mock_anthropic: MockAnthropic, image_host: str
) -> None:
    _, key = fetching_gateway.create_key()
    url = f"{image_host}/cat.txt"
    expected = {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}

    with openai.OpenAI(api_key=key, base_url=fetching_gateway.base_url, max_retries=0) as client:
        chat: Any = [{"type": "text", "text": "What?"}, {"type": "image_url", "image_url": {"url": url}}]
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": chat}])
        assert upstream_images(mock_anthropic.last_request) == [expected]

        responses: Any = [{"type": "input_text", "text": "What?"}, {"type": "input_image", "image_url": url}]
        client.responses.create(model="sonnet", input=[{"role": "user", "content": responses}])
        assert upstream_images(mock_anthropic.last_request) == [expected]

    with anthropic.Anthropic(api_key=key, base_url=fetching_gateway.url, max_retries=0) as claude:
        messages: Any = [
            {"type": "image", "source": {"type": "url", "url": url}},
            {"type": "text", "text": "What?"},
        ]
        claude.messages.create(
            model="sonnet", max_tokens=50, messages=[{"role": "user", "content": messages}]
        )
        assert upstream_images(mock_anthropic.last_request) == [expected]


def test_image_url_that_cannot_be_used_is_a_400_before_claude_runs(
    fetching_gateway: GatewayServer, mock_anthropic: MockAnthropic, image_host: str
) -> None:
    _, key = fetching_gateway.create_key()
    content: Any = [{"type": "image_url", "image_url": {"url": f"{image_host}/page.html"}}]

    with (
        openai.OpenAI(api_key=key, base_url=fetching_gateway.base_url, max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": content}])

    assert "is not a PNG, JPEG, GIF or WebP image" in raised.value.message
    assert not mock_anthropic.message_requests


# --- the fetch's limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/big.png", f"larger than {LIMIT} bytes"),
        ("/big-chunked.png", f"larger than {LIMIT} bytes"),
        ("/slow.png", "took longer than 1 s"),
        ("/page.html", "not a PNG, JPEG, GIF or WebP image"),
        ("/moved.png", "redirects (HTTP 302)"),
        ("/missing.png", "answered HTTP 404"),
    ],
)
async def test_fetch_outside_the_limits_is_refused(
    tmp_path: Path, image_host: str, path: str, reason: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await fetch_image(f"{image_host}{path}", fetching_settings(tmp_path))

    assert raised.value.status == 400
    assert reason in raised.value.message


async def test_fetch_within_the_limits_sniffs_the_type(tmp_path: Path, image_host: str) -> None:
    block = await fetch_image(f"{image_host}/cat.txt", fetching_settings(tmp_path))

    assert block == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/cat.png",
        "http://localhost:{port}/cat.png",
        "http://[::1]:{port}/cat.png",
        "http://10.1.2.3/cat.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]:{port}/cat.png",
    ],
)
async def test_private_addresses_are_refused_by_default(tmp_path: Path, image_host: str, url: str) -> None:
    port = image_host.rsplit(":", 1)[1]
    settings = fetching_settings(tmp_path, image_url_allow_private=False)

    with pytest.raises(InvalidRequestError) as raised:
        await fetch_image(url.format(port=port), settings)

    assert "IMAGE_URL_ALLOW_PRIVATE" in raised.value.message


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("192.168.1.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1", False),
    ],
)
def test_public_addresses_are_told_apart(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(("media_type", "data"), list(IMAGES.items()))
def test_image_types_are_sniffed_from_their_bytes(media_type: str, data: bytes) -> None:
    assert sniff_image_type(data) == media_type
    assert sniff_image_type(b"<svg/>" + data) is None
