"""The credential forms of the admin site as they are shown and read: the add form per kind, and the
ranks a key form gives its credentials; pure, like `admin_limits.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import ImmutableMultiDict

from claude_code_api.errors import InvalidRequestError
from claude_code_api.store.credential_kinds import (
    CredentialInput,
    CredentialOptions,
    CredentialSecrets,
)
from claude_code_api.store.credentials import Credential

# The form's fields for the secrets, and those for the options; secrets are never sent back to the page.
SECRET_FIELDS = (
    "oauth_token",
    "api_key",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "google_credentials",
)
OPTION_FIELDS = (
    "region",
    "project",
    "resource",
    "base_url",
    "model",
    "opus_model",
    "sonnet_model",
    "haiku_model",
)
# A credential's rank on the key forms is a select named `rank.<credential name>`; "" leaves it out.
RANK_FIELD_PREFIX = "rank."
MAX_RANKS = 5
SUBSCRIPTION_TERMS = (
    "A subscription's OAuth token is for its subscriber's own use; a team that serves others runs on "
    "Claude Console API keys or a cloud provider (Bedrock, Vertex AI, Foundry)."
)


@dataclass(frozen=True)
class CredentialForm:
    """The add form as shown: its kind, the non-secret fields as typed, and the message of a refusal."""

    kind: str = "subscription"
    name: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    allow_extra_usage: bool = False
    error: str | None = None
    error_field: str | None = None


def read_credential_form(form: ImmutableMultiDict[str, str]) -> tuple[CredentialForm, CredentialInput]:
    """The add form read into what the credential store checks, and the form to show it again."""
    options = {name: form.get(name, "") for name in OPTION_FIELDS}
    shown = CredentialForm(
        kind=form.get("kind", ""),
        name=form.get("name", ""),
        options=options,
        allow_extra_usage=form.get("allow_extra_usage") == "on",
    )
    secrets = {name: value for name in SECRET_FIELDS if (value := form.get(name, "")).strip()}
    given = CredentialInput(
        name=shown.name,
        kind=shown.kind,
        secrets=CredentialSecrets(**secrets),
        options=CredentialOptions.from_fields(options, allow_extra_usage=shown.allow_extra_usage),
    )
    return shown, given


def read_rank_form(form: ImmutableMultiDict[str, str]) -> tuple[tuple[str, ...], ...]:
    """The credentials a key form ranks, best first; InvalidRequestError for a rank that is not one.

    Names are not checked here: the key store refuses a name that no credential has.
    """
    by_rank: dict[int, list[str]] = {}
    for name, value in form.multi_items():
        if not name.startswith(RANK_FIELD_PREFIX) or not value.strip():
            continue
        try:
            rank = int(value)
        except ValueError:
            rank = 0
        if not 1 <= rank <= MAX_RANKS:
            raise InvalidRequestError(f"A rank is a number from 1 to {MAX_RANKS}.", param="credentials")
        by_rank.setdefault(rank, []).append(name.removeprefix(RANK_FIELD_PREFIX))
    return tuple(tuple(sorted(by_rank[rank])) for rank in sorted(by_rank))


def rank_choices(credentials: list[Credential], ranks: tuple[tuple[str, ...], ...]) -> list[dict[str, Any]]:
    """Each credential with the rank the form shows for it ('' for none)."""
    chosen = {name: str(number) for number, rank in enumerate(ranks, start=1) for name in rank}
    return [{"credential": c, "rank": chosen.get(c.name, "")} for c in credentials]
