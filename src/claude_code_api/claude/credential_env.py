"""The environment that makes Claude Code reach Claude through one upstream credential.

Claude Code picks its upstream from environment variables alone (shared/CLAUDE-CODE.md §13): a
subscription token, a Console API key, Amazon Bedrock, Google Vertex AI or Microsoft Foundry. The
SDK hands the server's whole environment to the CLI, so `credential_environment` names every
variable of every kind and sets the ones the credential does not use to empty strings, which the
CLI reads as unset. It is pure: the Vertex credential file comes back as content for the caller to
write with `write_credential_files`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from claude_code_api.upstream import CredentialKind, ModelPins, UpstreamCredential

__all__ = [
    "CREDENTIAL_VARIABLES",
    "CredentialEnvironment",
    "CredentialKind",
    "ModelPins",
    "UpstreamCredential",
    "credential_environment",
    "write_credential_files",
]

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
