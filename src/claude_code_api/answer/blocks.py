"""The content blocks the gateway builds for Claude (text, image, tool use, tool result) and the rules
for building them; pure."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import orjson

from claude_code_api.answer.tools import claude_tool_name
from claude_code_api.errors import InvalidRequestError


class TextContent(TypedDict):
    type: Literal["text"]
    text: str


class Base64Source(TypedDict):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(TypedDict):
    """An image URL the gateway fetches before the run (answer/images.py); Claude never sees it."""

    type: Literal["url"]
    url: str


class ImageContent(TypedDict):
    type: Literal["image"]
    source: Base64Source | UrlSource


class ToolUseContent(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultContent(TypedDict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: NotRequired[str | list[TextContent | ImageContent]]
    is_error: NotRequired[bool]


ContentBlock = TextContent | ImageContent | ToolUseContent | ToolResultContent


def text_block(text: str, where: str, message: str | None = None) -> TextContent:
    """A text block; a 400 naming `where` when the text is empty or blank."""
    if not text.strip():
        # Anthropic refuses empty text blocks; say so here rather than as an upstream 400.
        raise InvalidRequestError(message or f"{where} must not be empty.", param=where)
    return {"type": "text", "text": text}


def tool_use_block(call_id: str, name: str, arguments: dict[str, Any]) -> ToolUseContent:
    """An earlier call of the client function `name`, as Claude made it."""
    return {"type": "tool_use", "id": call_id, "name": claude_tool_name(name), "input": arguments}


def json_arguments(arguments: str | None) -> dict[str, Any] | None:
    """A tool call's JSON arguments as an object; None when they are not a JSON object."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
