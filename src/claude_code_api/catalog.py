"""Model names the gateway serves, OpenAI aliases for them, and the `/v1/models` list; pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claude_code_api.errors import ModelNotFoundError

# Short names Claude Code resolves itself to the current model of each family.
CLAUDE_FAMILIES = ("opus", "sonnet", "haiku")

# The seed's OpenAI aliases: clients hard-wired to OpenAI names keep working.
OPENAI_ALIASES: dict[str, str] = {
    "gpt-4": "opus",
    "gpt-4-turbo": "sonnet",
    "gpt-3.5-turbo": "claude-3-5-haiku-20241022",
}

# Full ids listed by /v1/models; any other well-formed Claude id is accepted too (see below).
LISTED_CLAUDE_IDS = (
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-1-20250805",
    "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-20241022",
)

# A full Claude id names a family: claude-sonnet-4-5, claude-3-5-haiku-20241022, ...
_CLAUDE_ID = re.compile(r"^claude-(?:[0-9][0-9.-]*-)?(?:opus|sonnet|haiku)(?:-[0-9a-z.]+)*$")

MODEL_OWNER = "anthropic"
CATALOG_CREATED = 1_700_000_000


@dataclass(frozen=True)
class ModelChoice:
    """A model a client asked for and the name Claude Code is started with."""

    requested: str
    claude_model: str


def resolve_model(name: str) -> ModelChoice:
    """Maps a requested model name to Claude Code's; raises ModelNotFoundError when unknown."""
    if name in OPENAI_ALIASES:
        return ModelChoice(requested=name, claude_model=OPENAI_ALIASES[name])
    if name in CLAUDE_FAMILIES or _CLAUDE_ID.fullmatch(name):
        return ModelChoice(requested=name, claude_model=name)
    raise ModelNotFoundError(name)


def model_ids(extra: Iterable[str] = ()) -> list[str]:
    """Every model id /v1/models lists: families, full ids (then `extra` ones not among them), then the
    OpenAI aliases."""
    listed = [*CLAUDE_FAMILIES, *LISTED_CLAUDE_IDS]
    listed += sorted(set(extra) - set(listed))
    return [*listed, *OPENAI_ALIASES]


def openai_model_list(listed: Sequence[str] | None = None) -> dict[str, object]:
    """The model list in OpenAI's `GET /v1/models` shape: `listed`, or every id of `model_ids()`."""
    return {
        "object": "list",
        "data": [openai_model(model_id) for model_id in (model_ids() if listed is None else listed)],
    }


def openai_model(model_id: str) -> dict[str, object]:
    """One model in OpenAI's shape; raises ModelNotFoundError for a name we do not serve."""
    resolve_model(model_id)
    return {"id": model_id, "object": "model", "created": CATALOG_CREATED, "owned_by": MODEL_OWNER}
