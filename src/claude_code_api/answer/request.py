"""What a request asks of Claude Code, whichever API it came through; pure.

Every API translates its wire shape into one `ClaudeRequest`: a system prompt, earlier turns, the
prompt, and the client's tools. The rules the APIs share live here once: the content blocks Claude
takes, how a conversation splits into history and prompt, how client tools are named and chosen,
when a text block is empty, and how a reasoning effort maps onto Claude Code's levels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from claude_code_api.errors import InvalidRequestError

ClaudeRole = Literal["user", "assistant"]


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

# Client functions reach Claude Code as tools of an in-process MCP server named "client".
CLIENT_TOOL_PREFIX = "mcp__client__"

# Claude Code starts a turn only on a new user prompt. When the conversation ends with tool results,
# those go into the replayed history and this prompt asks Claude to go on from them.
TOOL_RESULTS_PROMPT = "Continue: the tool results above answer your tool calls."

# Stop reasons that end an answer for lack of tokens.
LENGTH_STOP_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})

# Why a request for structured output fails, wherever the failure is noticed.
NO_STRUCTURED_ANSWER = (
    "Claude did not produce a JSON answer that matches the requested schema "
    "(it answered in prose, or its JSON failed the schema twice)."
)

# Claude Code's effort levels: what its `--effort` takes and claude-agent-sdk's EffortLevel.
Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORT_LEVELS: frozenset[str] = frozenset(Effort.__args__)  # type: ignore[attr-defined]
# OpenAI's efforts below Claude Code's lowest level.
_NEAREST_EFFORT: dict[str, Effort] = {"none": "low", "minimal": "low"}


@dataclass(frozen=True)
class ClaudeTurn:
    """One message of the conversation as Claude sees it."""

    role: ClaudeRole
    content: tuple[ContentBlock, ...]


def claude_tool_name(name: str) -> str:
    """The name Claude Code knows a client function by."""
    return CLIENT_TOOL_PREFIX + name


def client_tool_name(claude_name: str) -> str | None:
    """The client's name for a tool Claude calls, or None when it is not a client function."""
    if not claude_name.startswith(CLIENT_TOOL_PREFIX):
        return None
    return claude_name.removeprefix(CLIENT_TOOL_PREFIX)


@dataclass(frozen=True)
class ClientTool:
    """A function the client offers; Claude may ask for it, the client runs it."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def claude_name(self) -> str:
        return claude_tool_name(self.name)


@dataclass(frozen=True)
class ClaudeRequest:
    """What one request asks of Claude Code."""

    model: str
    system_prompt: str | None
    history: tuple[ClaudeTurn, ...]
    prompt: tuple[ContentBlock, ...]
    max_output_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    effort: Effort | None = None
    client_tools: tuple[ClientTool, ...] = ()
    output_schema: dict[str, Any] | None = None


def claude_request(
    *,
    model: str,
    system_parts: Iterable[str],
    turns: Iterable[ClaudeTurn],
    param: str,
    max_output_tokens: int | None = None,
    stop_sequences: Iterable[str] = (),
    effort: str | None = None,
    client_tools: tuple[ClientTool, ...] = (),
    output_schema: dict[str, Any] | None = None,
) -> ClaudeRequest:
    """The Claude request every translator ends with: system parts joined (empty ones left out), the
    conversation split into history and prompt (`param` names it in a 400), empty stop sequences
    dropped and the effort mapped to Claude Code's levels."""
    history, prompt = claude_conversation(turns, param=param)
    return ClaudeRequest(
        model=model,
        system_prompt="\n\n".join(part for part in system_parts if part) or None,
        history=history,
        prompt=prompt,
        max_output_tokens=max_output_tokens,
        stop_sequences=tuple(s for s in stop_sequences if s),
        effort=claude_effort(effort),
        client_tools=client_tools,
        output_schema=output_schema,
    )


def claude_conversation(
    turns: Iterable[ClaudeTurn], *, param: str
) -> tuple[tuple[ClaudeTurn, ...], tuple[ContentBlock, ...]]:
    """Splits a conversation into earlier turns and the prompt, which must be the user's.

    Claude expects alternating roles; the APIs allow repeats, which mean one longer turn. When the
    conversation ends with tool results, they go into the history and the prompt asks Claude to go on.
    """
    merged: list[ClaudeTurn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = ClaudeTurn(turn.role, merged[-1].content + turn.content)
        else:
            merged.append(turn)
    if not merged:
        raise InvalidRequestError(f"'{param}' must contain at least one user message.", param=param)
    if merged[-1].role != "user":
        raise InvalidRequestError(
            "The last message must come from the user (or a tool); "
            "continuing a partial assistant message is not supported.",
            param=param,
        )
    history, prompt = tuple(merged[:-1]), merged[-1].content
    if any(block["type"] == "tool_result" for block in prompt):
        history, prompt = tuple(merged), (TextContent(type="text", text=TOOL_RESULTS_PROMPT),)
    return history, prompt


def claude_effort(effort: str | None) -> Effort | None:
    """A reasoning effort as Claude Code's `--effort` level.

    Claude Code takes low, medium, high, xhigh and max (xhigh is Opus 4.7's; Claude Code falls back
    to high on other models). OpenAI's none and minimal, below its lowest level, map to low; every
    other level passes through unchanged.
    """
    if effort is None:
        return None
    level = _NEAREST_EFFORT.get(effort, effort)
    if level not in EFFORT_LEVELS:
        raise InvalidRequestError(f"Unknown reasoning effort '{effort}'.", param="effort")
    return level  # type: ignore[return-value]


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


def client_tool_list(tools: Iterable[ClientTool]) -> tuple[ClientTool, ...]:
    """The client's tools, once their names are known to be unique (a 400 otherwise)."""
    listed = tuple(tools)
    if len({tool.name for tool in listed}) != len(listed):
        raise InvalidRequestError("Tool names must be unique.", param="tools")
    return listed


def tool_input_schema(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """A function's parameters as Claude's tool input schema: an object with properties."""
    # OpenAI lets a function take no parameters.
    schema = dict(parameters or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def tool_use_instruction(
    tools: tuple[ClientTool, ...],
    *,
    named: str | None = None,
    required: bool = False,
    one_call: bool = False,
    param: str = "tool_choice",
) -> str:
    """System text for a tool choice Claude Code cannot pass upstream: a named or required tool call,
    at most one call. A named tool must be one of `tools` (400 naming `param` otherwise)."""
    if named is not None and named not in {tool.name for tool in tools}:
        raise InvalidRequestError(f"tool_choice names '{named}', which is not in 'tools'.", param=param)
    if not tools:
        return ""
    lines = []
    if named is not None:
        lines.append(f"You must answer by calling the tool {claude_tool_name(named)}.")
    elif required:
        lines.append("You must answer by calling one or more of the available tools.")
    if one_call:
        lines.append("Call at most one tool in your answer.")
    return " ".join(lines)
