"""The environment that makes Claude Code reach Claude through one upstream credential.

Claude Code picks its upstream from environment variables alone (shared/CLAUDE-CODE.md §13): a
subscription token, a Console API key, Amazon Bedrock, Google Vertex AI or Microsoft Foundry. The
SDK hands the server's whole environment to the CLI, so `credential_environment` names every
variable of every kind and sets the ones the credential does not use to empty strings, which the
CLI reads as unset. It is pure: the Vertex credential file comes back as content for the caller to
write with `write_credential_files`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

__all__ = [
    "CREDENTIAL_VARIABLES",
    "CredentialEnvironment",
    "CredentialKind",
    "ModelPins",
    "UpstreamCredential",
    "credential_environment",
    "write_credential_files",
]

CredentialKind = Literal["subscription", "anthropic-api-key", "bedrock", "vertex", "foundry"]
CREDENTIAL_KINDS: tuple[CredentialKind, ...] = get_args(CredentialKind)

# Every variable by which the CLI chooses its upstream, credential or model ids. Each child gets
# all of them: the ones its credential does not use as "", so nothing leaks in from the server's
# own environment (ANTHROPIC_API_KEY would win over a subscription token, CLAUDE-CODE.md §10).
CREDENTIAL_VARIABLES = (
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_PROFILE",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_SKIP_VERTEX_AUTH",
    "ANTHROPIC_VERTEX_BASE_URL",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "CLOUD_ML_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_SKIP_FOUNDRY_AUTH",
    "ANTHROPIC_FOUNDRY_API_KEY",
    "ANTHROPIC_FOUNDRY_BASE_URL",
    "ANTHROPIC_FOUNDRY_RESOURCE",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
)

# The file name of a Vertex credential inside the process's private folder.
VERTEX_CREDENTIALS_FILE = "google-credentials.json"
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

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise ValueError(f"{self.kind} credential: {problem}")


@dataclass(frozen=True)
class CredentialEnvironment:
    """What a Claude process needs for one credential: variables, and files to write first."""

    variables: Mapping[str, str] = field(repr=False)
    files: Mapping[Path, str] = field(default_factory=dict, repr=False)


def credential_environment(credential: UpstreamCredential, folder: Path) -> CredentialEnvironment:
    """Returns the CLI environment for `credential`; files it names belong in `folder`.

    Every name of `CREDENTIAL_VARIABLES` is in the result, "" where this credential sets nothing.
    """
    chosen: dict[str, str | None] = {}
    files: dict[Path, str] = {}
    if credential.kind == "subscription":
        chosen |= {"CLAUDE_CODE_OAUTH_TOKEN": credential.secret, "ANTHROPIC_BASE_URL": credential.base_url}
    elif credential.kind == "anthropic-api-key":
        chosen |= {"ANTHROPIC_API_KEY": credential.secret, "ANTHROPIC_BASE_URL": credential.base_url}
    elif credential.kind == "bedrock":
        chosen |= {
            "CLAUDE_CODE_USE_BEDROCK": "1",
            "AWS_REGION": credential.region,
            "AWS_BEARER_TOKEN_BEDROCK": credential.secret,
            "AWS_ACCESS_KEY_ID": credential.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credential.secret_access_key,
            "AWS_SESSION_TOKEN": credential.session_token,
            "ANTHROPIC_BEDROCK_BASE_URL": credential.base_url,
        }
    elif credential.kind == "vertex":
        path = folder / VERTEX_CREDENTIALS_FILE
        files[path] = credential.credentials_json or ""
        chosen |= {
            "CLAUDE_CODE_USE_VERTEX": "1",
            "ANTHROPIC_VERTEX_PROJECT_ID": credential.project,
            "CLOUD_ML_REGION": credential.region,
            "GOOGLE_APPLICATION_CREDENTIALS": str(path),
            "ANTHROPIC_VERTEX_BASE_URL": credential.base_url,
        }
    else:
        chosen |= {
            "CLAUDE_CODE_USE_FOUNDRY": "1",
            "ANTHROPIC_FOUNDRY_API_KEY": credential.secret,
            "ANTHROPIC_FOUNDRY_RESOURCE": credential.resource,
            "ANTHROPIC_FOUNDRY_BASE_URL": credential.base_url,
        }
    pins = credential.models
    chosen |= {
        "ANTHROPIC_MODEL": pins.default,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": pins.opus,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": pins.sonnet,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": pins.haiku,
    }
    variables = {name: chosen.get(name) or "" for name in CREDENTIAL_VARIABLES}
    return CredentialEnvironment(variables=variables, files=files)


def write_credential_files(environment: CredentialEnvironment) -> None:
    """Writes the environment's files, readable by their owner only (mode 0600 from creation)."""
    for path, content in environment.files.items():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(content)
        os.chmod(path, 0o600)  # O_CREAT's mode applies only to a new file


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
