"""Earlier turns as a Claude Code session transcript, so that a resumed session replays them; pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from claude_code_api.answer.request import ClaudeTurn


def transcript_entries(
    history: Iterable[ClaudeTurn],
    *,
    session_id: str,
    cwd: str,
    model: str,
    timestamp: str,
    uuids: Iterator[str],
) -> list[dict[str, Any]]:
    """Earlier turns as the JSON lines of a Claude Code session file, so that a resume replays them.

    The CLI reads one line per turn, each linked to the previous through `parentUuid`.
    """
    entries: list[dict[str, Any]] = []
    parent: str | None = None
    for turn in history:
        uuid = next(uuids)
        message: dict[str, Any] = {"role": turn.role, "content": list(turn.content)}
        if turn.role == "assistant":
            message = {
                "id": f"msg_{uuid.replace('-', '')}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": list(turn.content),
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
        entries.append(
            {
                "type": turn.role,
                "message": message,
                "uuid": uuid,
                "parentUuid": parent,
                "sessionId": session_id,
                "cwd": cwd,
                "timestamp": timestamp,
                "isSidechain": False,
                "userType": "external",
            }
        )
        parent = uuid
    return entries
