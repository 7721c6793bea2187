"""Tests of claude/transcript.py: earlier turns as a Claude Code session transcript."""

from __future__ import annotations

from typing import Any

import orjson

from claude_code_api.answer.request import ClaudeTurn
from claude_code_api.claude.transcript import transcript_entries


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def test_transcript_entries_link_parent_uuids_and_carry_session_and_cwd():
    history = (
        ClaudeTurn("user", (text("What is 2+2?"),)),
        ClaudeTurn("assistant", (text("4"),)),
        ClaudeTurn("user", (text("Times 3?"), text("Please."))),
    )
    entries = transcript_entries(
        history,
        session_id="session-1",
        cwd="/tmp/run-1",
        model="claude-sonnet-4-5",
        timestamp="2025-01-02T03:04:05.000Z",
        uuids=iter(["aaaa-1111", "bbbb-2222", "cccc-3333"]),
    )
    common = {
        "sessionId": "session-1",
        "cwd": "/tmp/run-1",
        "timestamp": "2025-01-02T03:04:05.000Z",
        "isSidechain": False,
        "userType": "external",
    }
    assert entries == [
        {
            "type": "user",
            "message": {"role": "user", "content": [text("What is 2+2?")]},
            "uuid": "aaaa-1111",
            "parentUuid": None,
            **common,
        },
        {
            "type": "assistant",
            "message": {
                "id": "msg_bbbb2222",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [text("4")],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
            "uuid": "bbbb-2222",
            "parentUuid": "aaaa-1111",
            **common,
        },
        {
            "type": "user",
            "message": {"role": "user", "content": [text("Times 3?"), text("Please.")]},
            "uuid": "cccc-3333",
            "parentUuid": "bbbb-2222",
            **common,
        },
    ]
    # Each entry is one JSON line of the session file.
    assert [orjson.loads(orjson.dumps(entry)) for entry in entries] == entries


def test_transcript_of_empty_history_is_empty():
    assert transcript_entries((), session_id="s", cwd="/", model="m", timestamp="t", uuids=iter(())) == []


# --- reading Claude Code's messages -------------------------------------------------------------
