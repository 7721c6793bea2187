"""The client's functions as Claude Code sees them: their names, their list, their input schema and the
instruction for a tool choice Claude Code cannot set; pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from claude_code_api.errors import InvalidRequestError

# Client functions reach Claude Code as tools of an in-process MCP server named "client".
CLIENT_TOOL_PREFIX = "mcp__client__"


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
