"""Tests of logs.py: every record is one line, whatever a client put in the values it logs."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from claude_code_api.access import AccessMiddleware
from claude_code_api.logs import configure_logging, escape_controls
from claude_code_api.metrics import GatewayMetrics

# The forged request of issue 14: a path whose %0A starts a WARNING line of its own.
FORGED_PATH = "/v1/x\n2026-12-05 08:00:00,000 WARNING claude_code_api [-] FORGED"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain /v1/models", "plain /v1/models"),
        ("a\nb\r\nc\td", "a\\nb\\r\\nc\\td"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00 del\x7f nel\x85", "nul\\x00 del\\x7f nel\\x85"),
        ("line\u2028separator\u2029", "line\\u2028separator\\u2029"),
        ("ünïcödé stays", "ünïcödé stays"),
    ],
)
def test_control_characters_are_escaped(text: str, escaped: str) -> None:
    assert escape_controls(text) == escaped


async def _request(path: str) -> None:
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    await AccessMiddleware(app, GatewayMetrics(lambda: None))(scope, receive, send)


@pytest.mark.usefixtures("restore_logging")
def test_a_forged_path_stays_on_its_access_log_line_in_text() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_lines=False, stream=stream)

    asyncio.run(_request(FORGED_PATH))

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert " INFO claude_code_api.access " in lines[0]
    assert "/v1/x\\n2026-12-05 08:00:00,000 WARNING" in lines[0]


@pytest.mark.usefixtures("restore_logging")
def test_a_forged_path_stays_on_its_access_log_line_in_json() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_lines=True, stream=stream)

    asyncio.run(_request(FORGED_PATH))

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    entry = orjson.loads(lines[0])
    assert entry["path"] == "/v1/x\\n2026-12-05 08:00:00,000 WARNING claude_code_api [-] FORGED"
    assert "\n" not in entry["message"]


@pytest.mark.usefixtures("restore_logging")
def test_any_logged_value_is_escaped_but_a_traceback_keeps_its_lines() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_lines=False, stream=stream)
    logger = logging.getLogger("claude_code_api.test")

    logger.warning("key name %s", "evil\r\nFORGED \x1b[2J")
    try:
        raise ValueError(f"bad path {FORGED_PATH}")
    except ValueError:
        logger.exception("failed")

    output = stream.getvalue()
    assert "key name evil\\r\\nFORGED \\x1b[2J\n" in output
    assert "\n  Traceback (most recent call last):\n" in output
    assert "\n  2026-12-05 08:00:00,000 WARNING claude_code_api [-] FORGED" in output
    # Every line is a record of its own, or indented under one.
    records = [line for line in output.splitlines() if not line.startswith(" ")]
    assert len(records) == 2
