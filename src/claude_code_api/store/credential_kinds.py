"""The five kinds of upstream credential, what each needs, and the checks on what an operator gives; pure.

Claude Code picks its upstream from its environment alone (../shared/CLAUDE-CODE.md §13), so a
credential is its secrets plus a few options; `environment` maps them to the variables Claude Code reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import cast
from urllib.parse import urlsplit

from claude_code_api.errors import InvalidOAuthTokenError, InvalidRequestError
from claude_code_api.upstream import CREDENTIAL_KINDS, CredentialKind, ModelPins

Kind = CredentialKind
KINDS: tuple[Kind, ...] = CREDENTIAL_KINDS
KIND_TITLES: dict[Kind, str] = {
    "subscription": "Claude subscription (OAuth token)",
    "anthropic-api-key": "Claude Console API key",
    "bedrock": "Amazon Bedrock",
    "vertex": "Google Vertex AI",
    "foundry": "Microsoft Foundry",
}
OAUTH_TOKEN_PREFIX = "sk-ant-oat01-"
CONSOLE_KEY_PREFIX = "sk-ant-"
CREDENTIAL_NAME_MAX_CHARS = 100
OPTION_MAX_CHARS = 200
SECRET_MAX_CHARS = 64 * 1024
# Google credential types Claude Code reads through GOOGLE_APPLICATION_CREDENTIALS for a gateway:
# a service account's key, or workload identity federation (an external account).
GOOGLE_CREDENTIAL_TYPES = ("service_account", "external_account")
_GOOGLE_REQUIRED = {
    "service_account": ("client_email", "private_key"),
    "external_account": ("audience", "token_url", "credential_source"),
}
# Letters, digits, '.', '_' and '-': a name goes on the command line unquoted, and commas join the
# names of one rank in `keys create --credential A,B`.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OAUTH_TOKEN_PATTERN = re.compile(re.escape(OAUTH_TOKEN_PREFIX) + r"[A-Za-z0-9_-]+")
_NO_SPACE = re.compile(r"\S+")


@dataclass(frozen=True)
class CredentialOptions:
    """What a credential holds besides its secrets; shown freely."""

    region: str | None = None
    project: str | None = None
    resource: str | None = None
    base_url: str | None = None
    models: ModelPins = field(default_factory=ModelPins)
    # A subscription past its plan limit bills extra usage only with this on (issue 17, item 5).
    allow_extra_usage: bool = False

    @classmethod
    def from_fields(cls, given: Mapping[str, str | None], *, allow_extra_usage: bool) -> CredentialOptions:
        """The options as the CLI and the admin form name them (`region`, ..., `model`, `opus_model`, ...)."""
        return cls(
            region=given["region"],
            project=given["project"],
            resource=given["resource"],
            base_url=given["base_url"],
            models=ModelPins(
                default=given["model"],
                opus=given["opus_model"],
                sonnet=given["sonnet_model"],
                haiku=given["haiku_model"],
            ),
            allow_extra_usage=allow_extra_usage,
        )


@dataclass(frozen=True)
class CredentialSecrets:
    """A credential's secrets; each kind uses some of them. Its repr shows none."""

    oauth_token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    google_credentials: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        given = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        return f"CredentialSecrets({', '.join(given)}: hidden)"

    def given(self) -> dict[str, str]:
        """The secrets that are set, by field name."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class CredentialInput:
    """What an operator gives to add a credential, before any check."""

    name: str
    kind: str
    secrets: CredentialSecrets
    options: CredentialOptions = field(default_factory=CredentialOptions)


@dataclass(frozen=True)
class ValidCredential:
    """A credential input that passed `validate_credential`: trimmed, complete for its kind."""

    name: str
    kind: Kind
    secrets: CredentialSecrets = field(repr=False)
    options: CredentialOptions


def main_secret_field(kind: Kind, secrets: CredentialSecrets) -> str:
    """The field of the secret that names the credential's last four characters and is stored alone."""
    if kind == "subscription":
        return "oauth_token"
    if kind == "vertex":
        return "google_credentials"
    if kind == "bedrock" and secrets.access_key_id is not None:
        return "secret_access_key"
    return "api_key"


def secret_hint(kind: Kind, secrets: CredentialSecrets) -> str:
    """The last four characters an operator may see: of the main secret, or for a Google credential
    file (whose text ends in a brace) of its key id or account."""
    main = getattr(secrets, main_secret_field(kind, secrets)) or ""
    if kind == "vertex":
        try:
            document = json.loads(main)
        except ValueError:
            document = {}
        for name in ("private_key_id", "client_email", "audience"):
            value = document.get(name) if isinstance(document, dict) else None
            if isinstance(value, str) and value:
                return value[-4:]
        return ""
    return main[-4:]


def validate_credential_name(name: str) -> str:
    """The name without surrounding spaces; InvalidRequestError (param `name`) if it cannot be one."""
    name = name.strip()
    if not 1 <= len(name) <= CREDENTIAL_NAME_MAX_CHARS or _NAME_PATTERN.fullmatch(name) is None:
        raise InvalidRequestError(
            f"A credential's name must have 1 to {CREDENTIAL_NAME_MAX_CHARS} characters: letters, "
            "digits, '.', '_' and '-', starting with a letter or digit.",
            param="name",
        )
    return name


def validate_kind(kind: str) -> Kind:
    """The kind, if it is one of KINDS; else InvalidRequestError naming them."""
    if kind.strip() not in KINDS:
        raise InvalidRequestError(
            f"Unknown credential kind '{kind}': use one of {', '.join(KINDS)}.", param="kind"
        )
    return cast(Kind, kind.strip())


def validate_oauth_token(token: str) -> str:
    """The token trimmed; InvalidOAuthTokenError if it is not a Claude OAuth token."""
    token = token.strip()
    if not token.startswith(OAUTH_TOKEN_PREFIX):
        raise InvalidOAuthTokenError()
    if _OAUTH_TOKEN_PATTERN.fullmatch(token) is None:
        raise InvalidOAuthTokenError(
            "it should continue with letters, digits, '-' and '_' only; was it copied whole?"
        )
    return token


def validate_credential(given: CredentialInput) -> ValidCredential:
    """Checks a credential for its kind and returns it trimmed.

    Raises InvalidRequestError whose `param` names the option at fault (InvalidOAuthTokenError for a
    subscription's token): an unknown kind, a missing or superfluous option, a malformed secret, a
    Google credential that is not JSON or not a service or external account.
    """
    kind = validate_kind(given.kind)
    name = validate_credential_name(given.name)
    secrets = CredentialSecrets(**{n: v.strip() for n, v in given.secrets.given().items() if v.strip()})
    options = _trimmed_options(given.options)
    for field_name, value in secrets.given().items():
        if len(value) > SECRET_MAX_CHARS:
            raise InvalidRequestError(f"'{field_name}' is too long.", param=field_name)
    allowed = _SECRET_FIELDS[kind]
    for field_name in secrets.given():
        if field_name not in allowed:
            raise InvalidRequestError(
                f"A {kind} credential takes no {_option(field_name)}.", param=field_name
            )
    if options.allow_extra_usage and kind != "subscription":
        raise InvalidRequestError(
            "Only a subscription can allow extra usage; other kinds are billed per token anyway.",
            param="allow_extra_usage",
        )
    for option_name in ("region", "project", "resource"):
        if getattr(options, option_name) is not None and option_name not in _OPTION_FIELDS[kind]:
            raise InvalidRequestError(
                f"A {kind} credential takes no {_option(option_name)}.", param=option_name
            )
    if options.base_url is not None:
        _check_url(options.base_url)
    secrets, options = _KIND_CHECKS[kind](secrets, options)
    return ValidCredential(name=name, kind=kind, secrets=secrets, options=options)


def parse_ranks(ranks: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Credential names in ranks from one string per rank, names of one rank joined by commas.

    Raises InvalidRequestError (param `credentials`) for an empty rank or a name given twice.
    """
    parsed: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for rank in ranks:
        names = tuple(name.strip() for name in rank.split(",") if name.strip())
        if not names:
            raise InvalidRequestError("A rank of credentials is empty.", param="credentials")
        for name in names:
            if name in seen:
                raise InvalidRequestError(
                    f"Credential '{name}' is named twice; give each credential one rank.",
                    param="credentials",
                )
            seen.add(name)
        parsed.append(names)
    return tuple(parsed)


# --- per kind ------------------------------------------------------------------------------------

_SECRET_FIELDS: dict[Kind, tuple[str, ...]] = {
    "subscription": ("oauth_token",),
    "anthropic-api-key": ("api_key",),
    "bedrock": ("api_key", "access_key_id", "secret_access_key", "session_token"),
    "vertex": ("google_credentials",),
    "foundry": ("api_key",),
}
_OPTION_FIELDS: dict[Kind, tuple[str, ...]] = {
    "subscription": (),
    "anthropic-api-key": (),
    "bedrock": ("region",),
    "vertex": ("region", "project"),
    "foundry": ("resource",),
}
_OPTION_NAMES = {
    "oauth_token": "--oauth-token",
    "api_key": "--api-key",
    "access_key_id": "--access-key-id",
    "secret_access_key": "--secret-access-key",
    "session_token": "--session-token",
    "google_credentials": "--credentials-file",
    "region": "--region",
    "project": "--project",
    "resource": "--resource",
}


def _option(field_name: str) -> str:
    return _OPTION_NAMES.get(field_name, field_name)


def _missing(kind: Kind, field_name: str, why: str = "") -> InvalidRequestError:
    return InvalidRequestError(f"A {kind} credential needs {_option(field_name)}{why}.", param=field_name)


def _check_subscription(
    secrets: CredentialSecrets, options: CredentialOptions
) -> tuple[CredentialSecrets, CredentialOptions]:
    if secrets.oauth_token is None:
        raise InvalidOAuthTokenError("none given; `claude setup-token` prints a long-lived one.")
    return replace(secrets, oauth_token=validate_oauth_token(secrets.oauth_token)), options


def _check_api_key(kind: Kind, secrets: CredentialSecrets) -> None:
    if secrets.api_key is None:
        raise _missing(kind, "api_key")
    if _NO_SPACE.fullmatch(secrets.api_key) is None:
        raise InvalidRequestError("An API key has no spaces; was it copied whole?", param="api_key")


def _check_console_key(
    secrets: CredentialSecrets, options: CredentialOptions
) -> tuple[CredentialSecrets, CredentialOptions]:
    _check_api_key("anthropic-api-key", secrets)
    key = secrets.api_key or ""
    if key.startswith(OAUTH_TOKEN_PREFIX):
        raise InvalidRequestError(
            "That is a subscription's OAuth token, not a Console API key: add it with --kind subscription.",
            param="api_key",
        )
    if not key.startswith(CONSOLE_KEY_PREFIX):
        raise InvalidRequestError(
            f"A Claude Console API key starts with '{CONSOLE_KEY_PREFIX}'.", param="api_key"
        )
    return secrets, options


def _check_bedrock(
    secrets: CredentialSecrets, options: CredentialOptions
) -> tuple[CredentialSecrets, CredentialOptions]:
    if options.region is None:
        raise _missing("bedrock", "region", " (an AWS region such as us-east-1)")
    aws_keys = secrets.access_key_id is not None or secrets.secret_access_key is not None
    if secrets.api_key is not None and (aws_keys or secrets.session_token is not None):
        raise InvalidRequestError(
            "A bedrock credential takes either --api-key (a Bedrock API key) or --access-key-id and "
            "--secret-access-key, not both.",
            param="api_key",
        )
    if secrets.api_key is not None:
        _check_api_key("bedrock", secrets)
        return secrets, options
    if secrets.access_key_id is None and secrets.secret_access_key is None:
        raise InvalidRequestError(
            "A bedrock credential needs --api-key (a Bedrock API key), or --access-key-id and "
            "--secret-access-key.",
            param="api_key",
        )
    if secrets.access_key_id is None:
        raise _missing("bedrock", "access_key_id", " with --secret-access-key")
    if secrets.secret_access_key is None:
        raise _missing("bedrock", "secret_access_key", " with --access-key-id")
    return secrets, options


def _check_vertex(
    secrets: CredentialSecrets, options: CredentialOptions
) -> tuple[CredentialSecrets, CredentialOptions]:
    if secrets.google_credentials is None:
        raise _missing("vertex", "google_credentials", " (a Google credential JSON file)")
    document = _google_credential(secrets.google_credentials)
    if options.project is None:
        # A service account's file names its project; an external account's does not.
        project = document.get("project_id")
        if not isinstance(project, str) or not project:
            raise _missing("vertex", "project", " (the Google Cloud project id)")
        options = replace(options, project=project)
    if options.region is None:
        raise _missing("vertex", "region", " (a Vertex AI region such as us-east5, or global)")
    return secrets, options


def _google_credential(text: str) -> dict[str, object]:
    try:
        document = json.loads(text)
    except ValueError:
        raise InvalidRequestError(
            "The Google credential file is not JSON: give the key file of a service account or the "
            "configuration of an external account.",
            param="google_credentials",
        ) from None
    kind = document.get("type") if isinstance(document, dict) else None
    if kind not in GOOGLE_CREDENTIAL_TYPES:
        raise InvalidRequestError(
            f'The Google credential file is not a Google credential: its "type" is {json.dumps(kind)}, '
            f"not one of {', '.join(GOOGLE_CREDENTIAL_TYPES)}.",
            param="google_credentials",
        )
    absent = [name for name in _GOOGLE_REQUIRED[kind] if not document.get(name)]
    if absent:
        raise InvalidRequestError(
            f"The Google credential file ({kind}) lacks {', '.join(absent)}; was it copied whole?",
            param="google_credentials",
        )
    return cast(dict[str, object], document)


def _check_foundry(
    secrets: CredentialSecrets, options: CredentialOptions
) -> tuple[CredentialSecrets, CredentialOptions]:
    _check_api_key("foundry", secrets)
    if options.resource is None and options.base_url is None:
        raise InvalidRequestError(
            "A foundry credential needs --resource (the Foundry resource name) or --base-url.",
            param="resource",
        )
    return secrets, options


_KIND_CHECKS = {
    "subscription": _check_subscription,
    "anthropic-api-key": _check_console_key,
    "bedrock": _check_bedrock,
    "vertex": _check_vertex,
    "foundry": _check_foundry,
}


def _trimmed_options(options: CredentialOptions) -> CredentialOptions:
    def trim(value: str | None, name: str) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if len(value) > OPTION_MAX_CHARS and name != "base_url":
            raise InvalidRequestError(f"'{name}' is too long.", param=name)
        return value

    models = options.models
    return CredentialOptions(
        region=trim(options.region, "region"),
        project=trim(options.project, "project"),
        resource=trim(options.resource, "resource"),
        base_url=trim(options.base_url, "base_url"),
        models=ModelPins(
            default=trim(models.default, "model"),
            opus=trim(models.opus, "opus_model"),
            sonnet=trim(models.sonnet, "sonnet_model"),
            haiku=trim(models.haiku, "haiku_model"),
        ),
        allow_extra_usage=options.allow_extra_usage,
    )


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2_000:
        raise InvalidRequestError(
            f"'{url}' is not a base URL: give an http:// or https:// URL.", param="base_url"
        )
