"""The model list in the shape of Anthropic's `GET /v1/models`; pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from claude_code_api.catalog import CATALOG_CREATED, OPENAI_ALIASES
from claude_code_api.errors import InvalidRequestError

_CATALOG_CREATED_AT = datetime.fromtimestamp(CATALOG_CREATED, UTC).isoformat().replace("+00:00", "Z")
_DATE_SUFFIX = re.compile(r"-\d{8}$")


def anthropic_model(model_id: str) -> dict[str, Any]:
    """One model in the shape of Anthropic's `GET /v1/models/{id}`."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name(model_id),
        "created_at": _CATALOG_CREATED_AT,
        "lifecycle": "active",
    }


def display_name(model_id: str) -> str:
    """A readable name: claude-3-5-haiku-20241022 → Claude 3.5 Haiku, sonnet → Claude Sonnet (latest)."""
    if model_id in OPENAI_ALIASES:
        return f"{model_id} (alias of {OPENAI_ALIASES[model_id]})"
    if not model_id.startswith("claude-"):
        return f"Claude {model_id.capitalize()} (latest)"
    words: list[str] = []
    for part in _DATE_SUFFIX.sub("", model_id).split("-")[1:]:
        if part.isdigit() and words and words[-1][-1].isdigit():
            words[-1] += f".{part}"
        else:
            words.append(part if part.isdigit() else part.capitalize())
    return "Claude " + " ".join(words)


def anthropic_model_list(
    model_ids: list[str], *, limit: int = 20, after_id: str | None = None, before_id: str | None = None
) -> dict[str, Any]:
    """A page of Anthropic's `GET /v1/models` list, with its cursors."""
    for param, cursor in (("after_id", after_id), ("before_id", before_id)):
        if cursor is not None and cursor not in model_ids:
            raise InvalidRequestError(f"{param}: no model has the id '{cursor}'.", param=param)
    if before_id is not None:
        # The page just before the cursor; more remain when the page does not reach the list's start.
        end = model_ids.index(before_id)
        start = max(0, end - limit)
        page, has_more = model_ids[start:end], start > 0
    else:
        start = 0 if after_id is None else model_ids.index(after_id) + 1
        page, has_more = model_ids[start : start + limit], start + limit < len(model_ids)
    return {
        "data": [anthropic_model(model_id) for model_id in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
