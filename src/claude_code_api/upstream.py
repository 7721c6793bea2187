"""An upstream credential as a Claude Code process runs on it: its kind, secrets, options and name; pure.

Every layer that passes a credential along (the request's run spec, the process pool, the store's
records) uses this one shape; claude/credential_env.py turns it into the CLI's environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, get_args

CredentialKind = Literal["subscription", "anthropic-api-key", "bedrock", "vertex", "foundry"]
CREDENTIAL_KINDS: tuple[CredentialKind, ...] = get_args(CredentialKind)

_GOOGLE_CREDENTIAL_TYPES = frozenset(
    {
        "service_account",
        "external_account",
        "authorized_user",
        "impersonated_service_account",
        "external_account_authorized_user",
    }
)


@dataclass(frozen=True)
class ModelPins:
    """The model ids a credential's upstream knows, pinned so the CLI neither guesses nor probes.

    Unpinned Bedrock and Vertex processes send three `max_tokens: 1` calls at every start
    (CLAUDE-CODE.md §13). `default` is `ANTHROPIC_MODEL`; the others the `opus`, `sonnet` and
    `haiku` aliases.
    """

    default: str | None = None
    opus: str | None = None
    sonnet: str | None = None
    haiku: str | None = None


@dataclass(frozen=True)
class UpstreamCredential:
    """One way to reach Claude, as stored: its kind, its secrets and where it points.

    Fields by kind (ValueError when one is missing or does not belong):
    - `subscription`: `secret` (OAuth token from `claude setup-token`).
    - `anthropic-api-key`: `secret` (Console API key).
    - `bedrock`: `region`, and `secret` (a Bedrock API key) or `access_key_id` +
      `secret_access_key` [+ `session_token`].
    - `vertex`: `project`, `region`, `credentials_json` (a Google credential file's content).
    - `foundry`: `secret` (its API key), and `resource` or `base_url`.
    Every kind takes `base_url`: its own base-URL variable (Vertex's includes `/v1`).
    """

    kind: CredentialKind
    secret: str | None = field(default=None, repr=False)
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    credentials_json: str | None = field(default=None, repr=False)
    region: str | None = None
    project: str | None = None
    resource: str | None = None
    base_url: str | None = None
    models: ModelPins = field(default_factory=ModelPins)
    # How the gateway knows it: its name (in state, metrics and logs, never a secret), and whether a
    # subscription may bill extra usage past its plan limit.
    name: str = ""
    allow_extra_usage: bool = False

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise ValueError(f"{self.kind} credential: {problem}")


def _problem(credential: UpstreamCredential) -> str | None:
    """What is wrong with a credential's fields for its kind, or None."""
    kind = credential.kind
    if kind not in CREDENTIAL_KINDS:
        return f"unknown kind; expected one of {', '.join(CREDENTIAL_KINDS)}"
    aws_keys = credential.access_key_id or credential.secret_access_key or credential.session_token
    if kind != "bedrock" and aws_keys:
        return "AWS access keys belong to a bedrock credential"
    if kind != "vertex" and credential.credentials_json:
        return "a Google credential file belongs to a vertex credential"
    if kind != "foundry" and credential.resource:
        return "a resource belongs to a foundry credential"
    if kind in ("subscription", "anthropic-api-key", "foundry") and (credential.region or credential.project):
        return "region and project belong to bedrock or vertex credentials"
    if kind in ("subscription", "anthropic-api-key") and not credential.secret:
        return "needs its secret"
    if kind == "bedrock":
        return _bedrock_problem(credential)
    if kind == "vertex":
        return _vertex_problem(credential)
    if kind == "foundry":
        if not credential.secret:
            return "needs its API key"
        if not (credential.resource or credential.base_url):
            return "needs a resource or a base URL"
    return None


def _bedrock_problem(credential: UpstreamCredential) -> str | None:
    if credential.project:
        return "a project belongs to a vertex credential"
    if not credential.region:
        return "needs a region"
    has_pair = bool(credential.access_key_id and credential.secret_access_key)
    if credential.secret and (credential.access_key_id or credential.secret_access_key):
        return "takes a Bedrock API key or AWS access keys, not both"
    if not credential.secret and not has_pair:
        return "needs a Bedrock API key, or an access key id and a secret access key"
    if credential.session_token and not has_pair:
        return "a session token goes with access keys"
    return None


def _vertex_problem(credential: UpstreamCredential) -> str | None:
    if credential.secret:
        return "takes a Google credential file, not a secret"
    if not (credential.project and credential.region):
        return "needs a project and a region"
    if not credential.credentials_json:
        return "needs a Google credential file"
    try:
        content = json.loads(credential.credentials_json)
    except ValueError:
        return "the credential file is not JSON"
    if not isinstance(content, dict) or content.get("type") not in _GOOGLE_CREDENTIAL_TYPES:
        return "the credential file is not a Google credential (its type is missing or unknown)"
    return None
