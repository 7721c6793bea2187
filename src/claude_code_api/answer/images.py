"""Image blocks: from base64 data and `data:` URLs, and from http(s) URLs that the gateway fetches
when the administrator allows it (IMAGE_URL_FETCH).

This is the one place the gateway makes a request on a client's behalf, so it is fenced: only public
addresses (a client must not reach the gateway's own network: cloud metadata, the admin site,
databases), the connection pinned to the address that was checked (no DNS rebinding), no redirects,
no proxy, a size and a time limit, and the bytes must be a PNG, JPEG, GIF or WebP image. Every
failure is the client's 400.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import replace

import httpx

from claude_code_api.answer.blocks import ContentBlock, ImageContent, TextContent
from claude_code_api.answer.request import ClaudeRequest, ClaudeTurn
from claude_code_api.config import Settings
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError

# Anthropic accepts these image types in base64 image blocks.
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.S)

# Anthropic takes up to 100 images per request; fetching is capped lower, as each costs a connection.
MAX_IMAGE_URLS = 20

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def image_block_from_url(url: str, where: str, *, fetch_allowed: bool = False) -> ImageContent:
    """An image block for an image URL: a `data:` URL inline; an http(s) URL as a URL source, which
    `inline_image_urls` fetches before the run, when the administrator allows it (else a 400)."""
    if url[:8].lower().startswith(("http://", "https://")):
        if fetch_allowed:
            return {"type": "image", "source": {"type": "url", "url": url}}
        raise UnsupportedParameterError(
            where,
            "image URLs must be data: URLs (base64 PNG, JPEG, GIF or WebP); this gateway does not "
            "fetch http(s) images unless its administrator allows it (IMAGE_URL_FETCH).",
        )
    return image_block_from_data_url(url, where)


def image_block_from_data_url(url: str, where: str) -> ImageContent:
    """Turns a `data:` image URL into an Anthropic base64 image block; 400 when it is not one."""
    if not url.startswith("data:"):
        raise UnsupportedParameterError(
            where, "image URLs must be data: URLs (base64 PNG, JPEG, GIF or WebP)."
        )
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(f"{where}: the image is not a base64 data: URL.", param=where)
    return image_block_from_base64(match["media"], match["data"], where)


def image_block_from_base64(media_type: str, data: str, where: str) -> ImageContent:
    """An Anthropic base64 image block, once its type and data are checked; 400 when they are bad."""
    media_type = media_type.lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            f"{where}: image type '{media_type}' is not supported; use PNG, JPEG, GIF or WebP.",
            param=where,
        )
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        decoded = b""
    if not decoded:
        raise InvalidRequestError(f"{where}: the image's base64 data is invalid.", param=where)
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


async def inline_image_urls(request: ClaudeRequest, settings: Settings) -> ClaudeRequest:
    """The request with every URL image source replaced by the fetched image, in base64."""
    urls = list(dict.fromkeys(_image_urls(request)))
    if not urls:
        return request
    if len(urls) > MAX_IMAGE_URLS:
        raise InvalidRequestError(
            f"A request may carry at most {MAX_IMAGE_URLS} image URLs; send the others as data: URLs."
        )
    images = await asyncio.gather(*(fetch_image(url, settings) for url in urls))
    fetched = dict(zip(urls, images, strict=True))
    return replace(
        request,
        history=tuple(ClaudeTurn(turn.role, _inlined(turn.content, fetched)) for turn in request.history),
        prompt=_inlined(request.prompt, fetched),
    )


def _image_urls(request: ClaudeRequest) -> Iterator[str]:
    for turn in request.history:
        yield from _urls_in(turn.content)
    yield from _urls_in(request.prompt)


def _urls_in(blocks: Iterable[ContentBlock | TextContent | ImageContent]) -> Iterator[str]:
    for block in blocks:
        if block["type"] == "image" and block["source"]["type"] == "url":
            yield block["source"]["url"]
        elif block["type"] == "tool_result" and isinstance(content := block.get("content"), list):
            yield from _urls_in(content)


def _inlined(blocks: tuple[ContentBlock, ...], fetched: dict[str, ImageContent]) -> tuple[ContentBlock, ...]:
    return tuple(_inline(block, fetched) for block in blocks)


def _inline(block: ContentBlock, fetched: dict[str, ImageContent]) -> ContentBlock:
    if block["type"] == "image" and block["source"]["type"] == "url":
        return fetched[block["source"]["url"]]
    if block["type"] == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return {**block, "content": [_inline_part(part, fetched) for part in content]}
    return block


def _inline_part(
    part: TextContent | ImageContent, fetched: dict[str, ImageContent]
) -> TextContent | ImageContent:
    if part["type"] == "image" and part["source"]["type"] == "url":
        return fetched[part["source"]["url"]]
    return part


async def fetch_image(url: str, settings: Settings) -> ImageContent:
    """Fetches one image URL within the limits and returns it as a base64 image block."""
    try:
        async with asyncio.timeout(settings.image_url_timeout):
            data = await _download(url, settings)
    except TimeoutError:
        raise _refusal(url, f"it took longer than {settings.image_url_timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise _refusal(url, f"the connection failed ({type(exc).__name__})") from None
    media_type = sniff_image_type(data)
    if media_type is None:
        raise _refusal(url, "it is not a PNG, JPEG, GIF or WebP image")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()},
    }


async def _download(url: str, settings: Settings) -> bytes:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise _refusal(url, "it is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _refusal(url, "only http and https URLs are fetched")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    address = await _checked_address(url, parsed.host, port, settings)
    # Connect to the address just checked, not to whatever the name resolves to a moment later; the
    # Host header and TLS (SNI and certificate) still use the name.
    pinned = parsed.copy_with(host=str(address), username=None, password=None)
    host_header = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    limit = settings.image_url_max_bytes
    async with (
        httpx.AsyncClient(
            trust_env=False, follow_redirects=False, timeout=settings.image_url_timeout
        ) as client,
        client.stream("GET", pinned, headers={"Host": host_header}, extensions=extensions) as response,
    ):
        if response.is_redirect:
            raise _refusal(url, f"it redirects (HTTP {response.status_code}); give the final URL")
        if response.status_code != 200:
            raise _refusal(url, f"the server answered HTTP {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _refusal(url, f"it is larger than {limit} bytes (IMAGE_URL_MAX_BYTES)")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise _refusal(url, f"it is larger than {limit} bytes (IMAGE_URL_MAX_BYTES)")
    return bytes(body)


async def _checked_address(url: str, host: str, port: int, settings: Settings) -> IPAddress:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise _refusal(url, f"the host '{host}' could not be resolved") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    if not settings.image_url_allow_private and not all(is_public_address(a) for a in addresses):
        raise _refusal(
            url,
            f"the host '{host}' is a loopback, private or otherwise non-public address, which this "
            "gateway does not fetch from (IMAGE_URL_ALLOW_PRIVATE)",
        )
    return addresses[0]


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is on the public internet (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def sniff_image_type(data: bytes) -> str | None:
    """The image type the bytes themselves show, whatever the server claimed; None when not one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _refusal(url: str, reason: str) -> InvalidRequestError:
    shown = url if len(url) <= 100 else url[:97] + "..."
    return InvalidRequestError(f"The image URL '{shown}' was not used: {reason}.")
