"""Parameters an API takes on the wire that Claude Code cannot honour.

Each API lists its own in a table (its fields.py) of (parameter, refused, reason) rows; the first row
that applies is the client's 400, naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable

from claude_code_api.errors import UnsupportedParameterError

# A parameter, whether this request sets it in a way Claude Code cannot honour, and why not.
FieldRefusal = tuple[str, bool, str]


def refuse_fields(refusals: Iterable[FieldRefusal]) -> None:
    """Raises a 400 naming the first parameter whose row applies."""
    for param, refused, reason in refusals:
        if refused:
            raise UnsupportedParameterError(param, reason)
