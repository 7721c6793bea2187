"""The `claude-code-api credentials` commands: add, list, rename, remove and check upstream credentials.

Every secret option has a `-file` twin (`--api-key-file PATH`, `-` for standard input), so that a
secret need not sit in the process list or the shell history. `cli.py` registers the group.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from claude_code_api.config import ConfigurationError, Settings, load_settings
from claude_code_api.doctor import probe_credentials
from claude_code_api.errors import GatewayError
from claude_code_api.security.encryption import TokenCipher, load_or_create_secret
from claude_code_api.store.credential_kinds import (
    KINDS,
    CredentialInput,
    CredentialOptions,
    CredentialSecrets,
    validate_credential,
)
from claude_code_api.store.credentials import Credential, CredentialStore
from claude_code_api.store.database import Database

T = TypeVar("T")

# The secret options: each takes its value, or with `-file` a path to read it from ('-': stdin).
SECRET_OPTIONS = {
    "oauth_token": "subscription: the OAuth token `claude setup-token` prints (sk-ant-oat01-...)",
    "api_key": "anthropic-api-key: the Console API key; bedrock: a Bedrock API key; foundry: its API key",
    "access_key_id": "bedrock: the AWS access key id",
    "secret_access_key": "bedrock: the AWS secret access key",
    "session_token": "bedrock: an AWS session token, for temporary keys",
}


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(f"Bad configuration: {exc}") from None


def with_credential_store(settings: Settings, work: Callable[[CredentialStore], Awaitable[T]]) -> T:
    """Runs `work` on the credential store of `settings`, turning gateway errors into one line."""

    async def run() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = Database.from_url(settings.resolved_database_url)
        try:
            await database.upgrade()
            cipher = TokenCipher(load_or_create_secret(settings.data_dir, settings.secret_key))
            return await work(CredentialStore(database, cipher))
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


def read_secret(option: str, value: str | None, path: str | None) -> str | None:
    """The secret given inline, or read from `path` ('-': standard input); not both."""
    if value is not None and path is not None:
        raise click.ClickException(f"Give --{option} or --{option}-file, not both.")
    if path is None:
        return value
    return _read_file(f"--{option}-file", path)


def _read_file(option: str, path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise click.ClickException(f"Cannot read {option} {path}: {reason}.") from None


def _secret_options(command: Callable[..., None]) -> Callable[..., None]:
    options = []
    for name, help_text in SECRET_OPTIONS.items():
        flag = name.replace("_", "-")
        options.append(click.option(f"--{flag}", name, metavar="VALUE", help=help_text + "."))
        options.append(
            click.option(
                f"--{flag}-file",
                f"{name}_file",
                metavar="PATH",
                help=f"Reads --{flag} from PATH ('-': standard input).",
            )
        )
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def credentials() -> None:
    """Add, list, rename, remove and check upstream credentials (what keys run on)."""


@credentials.command("add")
@click.argument("name")
@click.option("--kind", required=True, metavar="KIND", help=f"One of: {', '.join(KINDS)}.")
@_secret_options
@click.option(
    "--credentials-file",
    metavar="PATH",
    help="vertex: a Google credential JSON (service account or external account); its content is "
    "stored, not its path ('-': standard input).",
)
@click.option("--region", help="bedrock: the AWS region; vertex: the Vertex AI region (us-east5, global).")
@click.option("--project", help="vertex: the Google Cloud project id (default: the service account's).")
@click.option("--resource", help="foundry: the Foundry resource name.")
@click.option("--base-url", help="The kind's base URL, for a proxy or a test upstream.")
@click.option("--model", help="The model id Claude Code uses by default (ANTHROPIC_MODEL).")
@click.option("--opus-model", help="The kind's model id for opus (ANTHROPIC_DEFAULT_OPUS_MODEL).")
@click.option("--sonnet-model", help="The kind's model id for sonnet (ANTHROPIC_DEFAULT_SONNET_MODEL).")
@click.option("--haiku-model", help="The kind's model id for haiku (ANTHROPIC_DEFAULT_HAIKU_MODEL).")
@click.option(
    "--allow-extra-usage",
    is_flag=True,
    help="subscription: keep answering past the plan limit, billed as extra usage (off: never).",
)
def add_credential(name: str, kind: str, **options: Any) -> None:
    """Adds a credential NAME of --kind KIND; its secrets are stored encrypted and never shown again.

    \b
    subscription       --oauth-token [--allow-extra-usage]
    anthropic-api-key  --api-key
    bedrock            --region, and --api-key or --access-key-id --secret-access-key [--session-token]
    vertex             --region --credentials-file [--project]
    foundry            --api-key, and --resource or --base-url
    """
    secrets = {
        field: read_secret(field.replace("_", "-"), options[field], options[f"{field}_file"])
        for field in SECRET_OPTIONS
    }
    path = options["credentials_file"]
    google = _read_file("--credentials-file", path) if path is not None else None
    given = CredentialInput(
        name=name,
        kind=kind,
        secrets=CredentialSecrets(**secrets, google_credentials=google),
        options=CredentialOptions.from_fields(options, allow_extra_usage=options["allow_extra_usage"]),
    )
    record = with_credential_store(_settings(), lambda store: store.add_credential(given))
    click.echo(f"Added {record.kind} credential {record.name} ({record.masked}).")


@credentials.command("list")
def list_credentials() -> None:
    """Lists every credential: name, kind, last four characters, state, keys; never a secret."""

    async def read(store: CredentialStore) -> tuple[list[Credential], dict[str, int]]:
        return await store.list_credentials(), await store.key_counts()

    records, counts = with_credential_store(_settings(), read)
    rows: list[tuple[str, ...]] = [("NAME", "KIND", "SECRET", "STATE", "KEYS", "OPTIONS")]
    rows += [
        (r.name, r.kind, r.masked, describe_state(r), str(counts.get(r.id, 0)), describe_options(r) or "-")
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@credentials.command("rename")
@click.argument("old")
@click.argument("new")
def rename_credential(old: str, new: str) -> None:
    """Renames credential OLD to NEW; the keys that use it keep it."""
    record = with_credential_store(_settings(), lambda store: store.rename_credential(old, new))
    click.echo(f"Renamed credential {old} to {record.name}.")


@credentials.command("remove")
@click.argument("name")
def remove_credential(name: str) -> None:
    """Removes credential NAME; refused while a key that is not revoked uses it."""
    record = with_credential_store(_settings(), lambda store: store.remove_credential(name))
    click.echo(f"Removed {record.kind} credential {record.name}.")


@credentials.command("check")
@click.argument("name", required=False)
def check_credentials(name: str | None) -> None:
    """Checks credential NAME (default: every one) with one minimal request upstream (a one-token answer
    from haiku); prints ok or upstream's error for each and fails when any fails. Changes no state."""
    settings = _settings()

    async def check(store: CredentialStore) -> list[tuple[str, str, str]]:
        names = [name] if name is not None else [r.name for r in await store.list_credentials()]
        results: list[tuple[str, str, str]] = []
        readable = []
        for each in names:
            try:
                stored = await store.upstream_credential(each)
                validate_credential(
                    CredentialInput(
                        name=stored.name,
                        kind=stored.kind,
                        secrets=stored.secrets,
                        options=stored.credential.options,
                    )
                )
            except GatewayError as exc:
                if name is not None:
                    raise
                results.append((each, "?", f"PROBLEM: {exc.message}"))
                continue
            readable.append(stored.upstream())
        outcomes = await probe_credentials(settings, readable)
        for credential in readable:
            error = outcomes[credential.name]
            outcome = "ok: accepted upstream" if error is None else f"PROBLEM: {error.message}"
            results.append((credential.name, credential.kind, outcome))
        return results

    results = with_credential_store(settings, check)
    if not results:
        click.echo("No credentials; add one with `claude-code-api credentials add`.")
    for each, kind, outcome in results:
        click.echo(f"{each} ({kind}): {outcome}")
    problems = sum(outcome.startswith("PROBLEM") for _, _, outcome in results)
    if problems:
        raise click.ClickException(f"{problems} credential(s) failed their check.")


def describe_state(record: Credential) -> str:
    """The state as a list shows it: `ok`, `exhausted until …`, `broken: reason`."""
    state = record.state
    if state.state == "exhausted" and state.until is not None:
        return f"exhausted until {_when(state.until)}"
    if state.state == "broken" and state.reason:
        return f"broken: {state.reason}"
    return state.state


def describe_options(record: Credential) -> str:
    """The non-secret options that are set, as `name=value` pairs."""
    options = record.options
    shown = {
        "region": options.region,
        "project": options.project,
        "resource": options.resource,
        "base_url": options.base_url,
        "model": options.models.default,
        "opus": options.models.opus,
        "sonnet": options.models.sonnet,
        "haiku": options.models.haiku,
    }
    pairs = [f"{key}={value}" for key, value in shown.items() if value is not None]
    if options.allow_extra_usage:
        pairs.append("allow_extra_usage")
    return " ".join(pairs)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
