"""What a request asks of Claude Code, whichever API it came through; pure.

Every API translates its wire shape into one `ClaudeRequest`: a system prompt, earlier turns (of
blocks.py's content blocks), the prompt, and the client's tools (tools.py). The rules the APIs share
live here once: how a conversation splits into history and prompt, and how a reasoning effort maps
onto Claude Code's levels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from claude_code_api.answer.blocks import ContentBlock, without_empty_text
from claude_code_api.answer.tools import ClientTool
from claude_code_api.errors import InvalidRequestError

ClaudeRole = Literal["user", "assistant"]


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


class AdaptiveThinking(TypedDict):
    """Claude decides when and how much to think (Claude Code's default)."""

    type: Literal["adaptive"]
    display: NotRequired[Literal["summarized", "omitted"]]


class BudgetThinking(TypedDict):
    """Claude thinks up to `budget_tokens` tokens."""

    type: Literal["enabled"]
    budget_tokens: int
    display: NotRequired[Literal["summarized", "omitted"]]


class NoThinking(TypedDict):
    type: Literal["disabled"]


# Claude Code's thinking option, as claude-agent-sdk's ThinkingConfig takes it.
ClaudeThinking = AdaptiveThinking | BudgetThinking | NoThinking


@dataclass(frozen=True)
class ClaudeTurn:
    """One message of the conversation as Claude sees it."""

    role: ClaudeRole
    content: tuple[ContentBlock, ...]


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
    thinking: ClaudeThinking | None = None


@dataclass(frozen=True)
class RequestOptions:
    """How the client wants the answer shaped, as its API names it: the limit, stop sequences, effort
    (any API's level), the JSON schema of a structured answer and the thinking setting."""

    max_output_tokens: int | None = None
    stop_sequences: Iterable[str] = ()
    effort: str | None = None
    output_schema: dict[str, Any] | None = None
    thinking: ClaudeThinking | None = None


def claude_request(
    model: str,
    system_parts: Iterable[str],
    turns: Iterable[ClaudeTurn],
    tools: tuple[ClientTool, ...],
    options: RequestOptions,
    *,
    param: str,
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
        max_output_tokens=options.max_output_tokens,
        stop_sequences=tuple(s for s in options.stop_sequences if s),
        effort=claude_effort(options.effort),
        client_tools=tools,
        output_schema=options.output_schema,
        thinking=options.thinking,
    )


def claude_conversation(
    turns: Iterable[ClaudeTurn], *, param: str
) -> tuple[tuple[ClaudeTurn, ...], tuple[ContentBlock, ...]]:
    """Splits a conversation into earlier turns and the prompt, which must be the user's.

    Claude expects alternating roles; the APIs allow repeats, which mean one longer turn. The prompt
    may be tool results: claude/ decides how Claude Code gets them (to the process waiting inside the
    calls, or replayed). Empty text is carried as blocks.py's empty-text rule says.
    """
    merged: list[ClaudeTurn] = []
    for turn in (ClaudeTurn(turn.role, without_empty_text(turn.content)) for turn in turns):
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
    return tuple(merged[:-1]), merged[-1].content


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
