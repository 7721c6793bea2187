"""The content blocks the gateway builds for Claude (text, image, tool use, tool result) and the rules
for building them; pure."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import orjson

from claude_code_api.answer.tools import claude_tool_name


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


# The one empty-text rule. Every API accepts empty text ("" or blank), as OpenAI does, but Anthropic
# refuses an empty text block anywhere and a blank one that is a message's only text ("text content
# blocks must contain non-whitespace text", see LibreChat-AI/agents#124), so a single space would not
# do. Empty and blank text blocks are dropped; a turn left with no content at all carries this text,
# so that the conversation keeps its turns (and a prompt that is empty stays the user's turn).
EMPTY_TURN_TEXT = "(empty message)"


def text_block(text: str) -> TextContent:
    """A text block; empty or blank text is allowed here and handled by `without_empty_text`."""
    return {"type": "text", "text": text}


def without_empty_text(blocks: tuple[ContentBlock, ...]) -> tuple[ContentBlock, ...]:
    """A turn's blocks as Anthropic accepts them: empty and blank text blocks dropped (inside tool
    results too); `EMPTY_TURN_TEXT` when nothing is left."""
    kept: list[ContentBlock] = []
    for block in blocks:
        if block["type"] == "text":
            if block["text"].strip():
                kept.append(block)
        elif block["type"] == "tool_result" and "content" in block:
            content = block["content"]
            if isinstance(content, str):
                kept.append(block if content.strip() else _without_content(block))
                continue
            parts = [part for part in content if part["type"] != "text" or part["text"].strip()]
            if parts:
                kept.append({**block, "content": parts})
            else:
                kept.append(_without_content(block))
        else:
            kept.append(block)
    return tuple(kept) or (TextContent(type="text", text=EMPTY_TURN_TEXT),)


def _without_content(block: ToolResultContent) -> ToolResultContent:
    bare: ToolResultContent = {"type": "tool_result", "tool_use_id": block["tool_use_id"]}
    if "is_error" in block:
        bare["is_error"] = block["is_error"]
    return bare


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
