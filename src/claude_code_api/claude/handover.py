"""Client function calls held open inside a live Claude Code process until the client sends their results.

The client's functions reach Claude Code as tools of an in-process MCP server. When Claude calls one, the
CLI asks permission (with the call's id), then runs the tool's handler; the handler here waits for the
client's next request to bring that call's result. The answer to the client ends at the call, the process
stays inside it, and the result it is handed becomes the real `tool_result` the upstream sees: no replay,
no synthetic turn. The CLI runs the calls of one message one after another, so each handler takes the id
of the permission asked just before it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext

from claude_code_api.answer.blocks import ContentBlock
from claude_code_api.answer.tools import client_tool_name

# What a call still waiting gets when its process is being ended; nothing reads it upstream.
ABANDONED = "The client did not send this tool's result."


@dataclass(frozen=True)
class ToolOutcome:
    """The client's result for one call, as MCP content blocks (text and images)."""

    content: tuple[dict[str, Any], ...]
    is_error: bool = False

    def as_mcp_result(self) -> dict[str, Any]:
        return {"content": list(self.content), "is_error": self.is_error}


McpHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ToolHandOver:
    """The calls of one process: their ids in the order the CLI runs them, and their results."""

    def __init__(self) -> None:
        self._permitted: deque[str] = deque()
        self._results: dict[str, ToolOutcome] = {}
        self._waiting: dict[str, asyncio.Future[ToolOutcome]] = {}

    async def permit(
        self, name: str, arguments: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow | PermissionResultDeny:
        """Lets Claude call a client function (its handler waits for the client); refuses anything else."""
        if client_tool_name(name) is None or not context.tool_use_id:
            return PermissionResultDeny(message="This tool is not available.", interrupt=True)
        self._permitted.append(context.tool_use_id)
        return PermissionResultAllow()

    def handler(self) -> McpHandler:
        """The handler of every client function: it returns the result the client sends for the call."""

        async def wait_for_client(arguments: dict[str, Any]) -> dict[str, Any]:
            call_id = self._permitted.popleft()
            outcome = self._results.pop(call_id, None)
            if outcome is None:
                waiter = asyncio.get_running_loop().create_future()
                self._waiting[call_id] = waiter
                try:
                    outcome = await waiter
                finally:
                    self._waiting.pop(call_id, None)
            return outcome.as_mcp_result()

        return wait_for_client

    def deliver(self, outcomes: Mapping[str, ToolOutcome]) -> None:
        """Hands the client's results to the calls waiting for them (or about to)."""
        for call_id, outcome in outcomes.items():
            waiter = self._waiting.get(call_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(outcome)
            else:
                self._results[call_id] = outcome

    def abandon(self) -> None:
        """Releases every waiting call with an error, so that the process can stop."""
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_result(ToolOutcome(({"type": "text", "text": ABANDONED},), is_error=True))
        self._results.clear()
        self._permitted.clear()


def tool_outcomes(prompt: tuple[ContentBlock, ...]) -> dict[str, ToolOutcome] | None:
    """The client's results per call id when the prompt is nothing but tool results, else None."""
    outcomes: dict[str, ToolOutcome] = {}
    for block in prompt:
        if block["type"] != "tool_result":
            return None
        content = block.get("content", "")
        parts: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        mcp: list[dict[str, Any]] = []
        for part in parts:
            if part["type"] == "text":
                mcp.append({"type": "text", "text": part["text"]})
            elif part["type"] == "image" and part["source"]["type"] == "base64":
                source = part["source"]
                mcp.append({"type": "image", "data": source["data"], "mimeType": source["media_type"]})
            else:
                return None
        outcomes[block["tool_use_id"]] = ToolOutcome(tuple(mcp), bool(block.get("is_error")))
    return outcomes or None
