"""Log set-up: text or JSON lines, a request id on every line of a request, secrets redacted, control
characters escaped."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

import orjson

from claude_code_api.security.redaction import RedactingFilter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


# C0 and C1 controls (newlines, carriage return, escape sequences) and Unicode's line separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """Returns `text` with every control character written as an escape (`\\n`, `\\x1b`), so that a
    value a client chose (a path, a model, a key name) cannot start a forged log line or drive a terminal."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


class ControlEscapingFilter(logging.Filter):
    """Escapes control characters in a record's message and structured fields: one record, one line.

    An exception's traceback, which the formatter adds after the message, keeps its own lines, each
    indented: an exception message that carries a client's newline cannot start a line of its own.
    Runs after RedactingFilter, which formats the traceback into `exc_text`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape_controls(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        if record.exc_text:
            record.exc_text = "\n".join(f"  {escape_controls(line)}" for line in record.exc_text.split("\n"))
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                name: escape_controls(value) if isinstance(value, str) else value
                for name, value in fields.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        # Structured fields a caller passes as `extra={"fields": {...}}` (the access log's); the
        # fields above win over a field of the same name.
        for name, value in getattr(record, "fields", {}).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry).decode()


def configure_logging(level: str, json_lines: bool, stream: TextIO | None = None) -> None:
    """Sends every log record, redacted, escaped and tagged with its request id, to `stream` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactingFilter())
    handler.addFilter(ControlEscapingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # access.py writes one line per request (with its key id and model); uvicorn's own would repeat
    # it. With no handler anywhere above it, uvicorn does not even format its lines.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
