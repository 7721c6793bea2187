"""What a live Claude Code process holds, and how far it must be rewound to hold a request's history.

A process keeps its conversation between requests. Each exchange it holds started with one user prompt,
whose uuid the CLI replays to us; the CLI's `rewind_conversation` removes such a prompt and everything
after it. A conversation is compared by fingerprints of its turns in a canonical form: what the client
sends back (OpenAI tool calls with JSON-string arguments, Anthropic blocks with moving `cache_control`
marks, a tool result as a string or as text blocks) must match what the process holds, and nothing that
cannot change what Claude reads may break the match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from claude_code_api.answer.request import ClaudeTurn


def canonical_block(block: Mapping[str, Any]) -> tuple[Any, ...]:
    """A content block (as the gateway builds it, or inside a tool result) reduced to what Claude reads."""
    kind = block["type"]
    if kind == "text":
        return ("text", block["text"])
    if kind == "image":
        source = block["source"]
        if source["type"] == "base64":
            digest = hashlib.sha256(source["data"].encode()).hexdigest()
            return ("image", source["media_type"], digest)
        return ("image", source.get("url", ""))
    if kind == "tool_use":
        # A call is known by its id: clients send its arguments back reworded (Claude Code fills in the
        # optional ones with their defaults), while the process holds the call as Claude made it.
        return ("tool_use", block["id"], block["name"])
    if kind == "tool_result":
        content = block.get("content", "")
        parts: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        return (
            "tool_result",
            block["tool_use_id"],
            bool(block.get("is_error")),
            tuple(canonical_block(part) for part in _merged_text(parts) if _kept(part)),
        )
    return (kind, orjson.dumps(block, option=orjson.OPT_SORT_KEYS).decode())


def _kept(block: Mapping[str, Any]) -> bool:
    # An empty text block says nothing (and Anthropic refuses it): clients differ in sending one.
    return not (block.get("type") == "text" and not block.get("text"))


def _merged_text(blocks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Adjacent text blocks as one: a client that got the text streamed sends it back whole."""
    merged: list[Mapping[str, Any]] = []
    for block in blocks:
        if block.get("type") == "text" and merged and merged[-1].get("type") == "text":
            merged[-1] = {"type": "text", "text": merged[-1]["text"] + block["text"]}
        else:
            merged.append(block)
    return merged


def canonical_turn(turn: ClaudeTurn) -> tuple[Any, ...]:
    """A turn reduced to its role and what Claude reads of its blocks."""
    blocks = [
        block for block in _merged_text(cast(tuple[Mapping[str, Any], ...], turn.content)) if _kept(block)
    ]
    return (turn.role, tuple(canonical_block(block) for block in blocks))


def fingerprints(turns: Sequence[ClaudeTurn]) -> list[str]:
    """The fingerprint of every prefix of `turns`: element i covers the first i turns."""
    digest = hashlib.sha256()
    prints = [digest.hexdigest()]
    for turn in turns:
        digest.update(orjson.dumps(canonical_turn(turn)))
        digest.update(b"\n")
        prints.append(digest.copy().hexdigest())
    return prints


def fingerprint(turns: Sequence[ClaudeTurn]) -> str:
    """A digest of a conversation, equal only for conversations Claude reads the same."""
    return fingerprints(turns)[-1]


EMPTY = fingerprint(())


@dataclass(frozen=True)
class Exchange:
    """One prompt the process was given and all that followed it."""

    prompt_uuid: str
    start: str  # the fingerprint of the conversation before the prompt


@dataclass
class HeldConversation:
    """The exchanges a live process holds, and the fingerprint of all of it.

    `whole` is None while a turn runs, or after one ended in a way the gateway cannot describe; such a
    conversation can still be rewound to the start of any of its exchanges.
    """

    floor: str = EMPTY  # what the process was started with: no rewind goes below it
    exchanges: list[Exchange] = field(default_factory=list)
    whole: str | None = None

    def __post_init__(self) -> None:
        if self.whole is None and not self.exchanges:
            self.whole = self.floor

    def keep_for(self, history: str) -> int | None:
        """How many exchanges to keep so that the process holds exactly `history` (a fingerprint),
        or None when no rewind gets there."""
        if self.whole == history:
            return len(self.exchanges)
        for position in range(len(self.exchanges) - 1, -1, -1):
            if self.exchanges[position].start == history:
                return position
        return 0 if history == self.floor else None

    def rewinds_for(self, keep: int) -> list[str]:
        """The prompt uuids to rewind, last first, to keep the first `keep` exchanges."""
        return [exchange.prompt_uuid for exchange in reversed(self.exchanges[keep:])]

    def truncate(self, keep: int) -> None:
        """Records that the exchanges after the first `keep` are gone."""
        if keep < len(self.exchanges):
            self.whole = self.exchanges[keep].start
            del self.exchanges[keep:]

    def begin(self, prompt_uuid: str, start: str) -> None:
        """Records a new exchange, started on a conversation whose fingerprint is `start`."""
        self.exchanges.append(Exchange(prompt_uuid, start))
        self.whole = None

    def settle(self, whole: str | None) -> None:
        """Records what the process holds once a turn is over (None: not describable)."""
        self.whole = whole
