"""Scrubs OAuth tokens and API keys from log records and from any text shown to a client."""

from __future__ import annotations

import logging
import re

# OAuth tokens (sk-ant-oat01-...), Anthropic API keys and our own sk- keys: anything long after sk-.
# Not inside a word ("task-..."), but after an escape in repr() output ("\\nsk-...") or URL encoding.
_SECRET = re.compile(
    r"(?:(?<![A-Za-z0-9])|(?<=\\[ntr])|(?<=%[0-9A-Fa-f]{2}))sk-(?:ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{16,}"
)


def redact(text: str) -> str:
    """Replaces every token- or key-shaped string with a marker that keeps only its kind."""
    return _SECRET.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    secret = match.group(0)
    kind = "sk-ant-" if secret.startswith("sk-ant-") else "sk-"
    return f"{kind}<redacted>"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message and any exception text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
