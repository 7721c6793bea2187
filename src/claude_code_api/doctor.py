"""`claude-code-api doctor`: what an operator would otherwise find out the hard way, checked at once.

Each check returns a `Finding`; the command prints them as a table and fails when any is a problem.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import redis.asyncio as redis
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import ClaudeRequest
from claude_code_api.claude.options import bundled_cli_path, bundled_cli_version
from claude_code_api.claude.runner import ClaudeRunner
from claude_code_api.config import Settings
from claude_code_api.errors import GatewayError, SecretKeyError
from claude_code_api.gateway import load_model_table, token_problem
from claude_code_api.model_table import ModelTable
from claude_code_api.security.certs import CertificateError, check_certificate, default_paths
from claude_code_api.security.encryption import TokenCipher, load_or_create_secret, secret_file_path
from claude_code_api.store.database import Database
from claude_code_api.store.keys import KeyStore
from claude_code_api.store.verifier import (
    active_key_count,
    mismatch_message,
    secret_matches,
    secret_source,
)
from claude_code_api.upstream import UpstreamCredential

# A certificate this close to its end is worth a warning.
CERTIFICATE_WARNING = timedelta(days=30)
# The smallest request that proves a credential works: one short prompt, a one-token answer.
TOKEN_PROBE_PROMPT = "Reply with OK."


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "PROBLEM"


@dataclass(frozen=True)
class Finding:
    """The outcome of one check."""

    check: str
    status: Status
    detail: str


def check_configuration(settings: Settings) -> list[Finding]:
    """Settings that load but are unwise."""
    findings = [Finding("configuration", Status.OK, "every variable is valid")]
    if settings.uses_default_admin_password:
        findings.append(Finding("admin password", Status.WARNING, "ADMIN_PASSWORD is the default 'changeme'"))
    return findings


def check_model_table(settings: Settings) -> Finding:
    """The operator's model table, when there is one, reads and makes sense."""
    try:
        table = load_model_table(settings)
    except GatewayError as exc:
        return Finding("model table", Status.PROBLEM, exc.message)
    if table.source is None:
        return Finding("model table", Status.OK, f"built-in model ids (no {settings.resolved_model_table})")
    names = sum(len(entries) for entries in table.operator.values())
    return Finding("model table", Status.OK, f"{table.source}: {names} model name(s) over the built-in ids")


def check_data_dir(data_dir: Path) -> Finding:
    """The data directory exists, is writable, and only its owner can read it."""
    if not data_dir.exists():
        return Finding("data directory", Status.WARNING, f"{data_dir} does not exist yet; serve creates it")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        return Finding("data directory", Status.PROBLEM, f"{data_dir} is not writable by this user")
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    secret = data_dir / "secret_key"
    if secret.exists() and stat.S_IMODE(secret.stat().st_mode) & 0o077:
        return Finding("data directory", Status.PROBLEM, f"{secret} is readable by others: chmod 600 it")
    if mode & 0o077:
        return Finding("data directory", Status.WARNING, f"{data_dir} is open to others (mode {mode:o})")
    shared = [
        path
        for path in data_dir.rglob("*")
        if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) & 0o077
    ]
    if shared:
        return Finding(
            "data directory",
            Status.WARNING,
            f"{len(shared)} path(s) in {data_dir} are open to others, such as {shared[0]}; "
            "serve makes them private at start",
        )
    return Finding("data directory", Status.OK, f"{data_dir} (mode {mode:o})")


async def check_database(database: Database, url: str) -> Finding:
    shown = make_url(url).render_as_string(hide_password=True)
    if await database.ping():
        return Finding("database", Status.OK, shown)
    return Finding("database", Status.PROBLEM, f"cannot connect to {shown}")


async def check_redis(redis_url: str | None) -> Finding:
    if not redis_url:
        return Finding("redis", Status.OK, "not used: limits are counted in this process")
    client = redis.from_url(redis_url)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        return Finding("redis", Status.PROBLEM, f"cannot reach REDIS_URL: {type(exc).__name__}")
    finally:
        await client.aclose()
    return Finding("redis", Status.OK, "reachable")


def check_claude_code() -> Finding:
    try:
        cli = bundled_cli_path()
    except GatewayError as exc:
        return Finding("claude code", Status.PROBLEM, exc.message)
    if not os.access(cli, os.X_OK):
        return Finding("claude code", Status.PROBLEM, f"{cli} is not executable")
    return Finding("claude code", Status.OK, f"version {bundled_cli_version()} bundled with claude-agent-sdk")


def check_certificate_files(settings: Settings, now: datetime) -> Finding:
    default_cert, default_key = default_paths(settings.data_dir)
    cert = settings.tls_cert_file or default_cert
    key = settings.tls_key_file or default_key
    if not cert.exists():
        return Finding(
            "certificate",
            Status.WARNING,
            f"none at {cert}: the admin site is not served (run `claude-code-api generate-certs`)",
        )
    try:
        info = check_certificate(cert, key)
    except CertificateError as exc:
        return Finding("certificate", Status.PROBLEM, str(exc))
    ends = info.not_valid_after.date().isoformat()
    if info.expired_at(now):
        return Finding("certificate", Status.PROBLEM, f"{cert} expired on {ends}")
    if info.expired_at(now + CERTIFICATE_WARNING):
        return Finding("certificate", Status.WARNING, f"{cert} expires on {ends}")
    return Finding("certificate", Status.OK, f"{cert}, valid until {ends}")


async def check_secret(settings: Settings, database: Database) -> Finding:
    """The secret can be read, and it is the one the store's OAuth tokens are encrypted with."""
    source = secret_source(settings.data_dir, settings.secret_key)
    if settings.secret_key is None and not secret_file_path(settings.data_dir).exists():
        try:
            keys = await active_key_count(database)
        except SQLAlchemyError:
            keys = 0
        if keys:
            return Finding("secret", Status.PROBLEM, f"{source} is missing: {mismatch_message(source)}")
        return Finding("secret", Status.OK, f"{source} does not exist yet; serve generates it")
    try:
        cipher = TokenCipher(load_or_create_secret(settings.data_dir, settings.secret_key))
        matches = await secret_matches(database, cipher, write=False)
    except SecretKeyError as exc:
        return Finding("secret", Status.PROBLEM, exc.message)
    except SQLAlchemyError:
        return Finding("secret", Status.WARNING, "the key store is not migrated yet; serve checks it")
    if not matches:
        return Finding("secret", Status.PROBLEM, mismatch_message(source))
    return Finding("secret", Status.OK, f"from {source}; it decrypts the stored OAuth tokens")


def probe_request(model: str) -> ClaudeRequest:
    """The cheapest request that proves a credential works: one short prompt, a one-token answer."""
    return ClaudeRequest(
        model=model,
        system_prompt=None,
        history=(),
        prompt=({"type": "text", "text": TOKEN_PROBE_PROMPT},),
        max_output_tokens=1,
    )


async def probe_credentials(
    settings: Settings, credentials: Sequence[UpstreamCredential]
) -> dict[str, GatewayError | None]:
    """Sends one minimal request on each credential, on its own (no failover, no warm process): by
    name, None where upstream accepted it, else the error it answered with (its message names no
    secret). Raises ModelTableError when the operator's model table is malformed."""
    models = load_model_table(settings)
    runner = ClaudeRunner(settings.model_copy(update={"warm_processes": 0}))
    runner.start()
    outcomes: dict[str, GatewayError | None] = {}
    try:
        for credential in credentials:
            try:
                request = probe_request(_probe_model(models, credential))
                async with runner.run(RunSpec.on(credential, request, models)) as messages:
                    async for _ in messages:
                        pass
            except GatewayError as exc:
                outcomes[credential.name] = exc
                continue
            outcomes[credential.name] = None
    finally:
        await runner.aclose()
    return outcomes


def _probe_model(models: ModelTable, credential: UpstreamCredential) -> str:
    """The cheapest family the credential serves (haiku where it can)."""
    served = (family for family in ("haiku", "sonnet", "opus") if models.upstream_model(credential, family))
    return next(served, "haiku")


async def check_tokens(settings: Settings, keys: KeyStore) -> list[Finding]:
    """Sends one minimal request per credential, and records on each active key how its credentials
    fared: accepted when one of them was, else the first one's failure."""
    store = keys.credentials
    findings, readable = [], []
    for record in await store.list_credentials():
        try:
            readable.append((await store.upstream_credential(record.name)).upstream())
        except GatewayError as exc:
            findings.append(Finding(f"credential {record.name}", Status.PROBLEM, exc.message))
    outcomes = await probe_credentials(settings, readable)
    for credential in readable:
        error = outcomes[credential.name]
        name = f"credential {credential.name} ({credential.kind})"
        if error is None:
            findings.append(Finding(name, Status.OK, "accepted upstream"))
        else:
            findings.append(Finding(name, Status.PROBLEM, error.message))
    for key in await keys.list_keys():
        if not key.is_active:
            continue
        ranked = [outcomes[name] for rank in key.credential_ranks for name in rank if name in outcomes]
        if not ranked:
            continue
        if any(error is None for error in ranked):
            await keys.record_upstream_result(key.id, ok=True)
        else:
            first = ranked[0]
            assert first is not None
            kind = token_problem(first) or "failed"
            await keys.record_upstream_result(key.id, ok=False, error=f"{kind}: {first.message}")
    if not findings:
        findings.append(Finding("credentials", Status.OK, "no credentials"))
    return findings


async def diagnose(
    settings: Settings, *, check_tokens_upstream: bool, now: datetime | None = None
) -> list[Finding]:
    """Runs every check against the configured services."""
    now = now or datetime.now(UTC)
    table = check_model_table(settings)
    findings = [*check_configuration(settings), table, check_data_dir(settings.data_dir)]
    findings.append(check_claude_code())
    findings.append(check_certificate_files(settings, now))
    findings.append(await check_redis(settings.redis_url))
    database = Database.from_url(settings.resolved_database_url)
    try:
        findings.append(await check_database(database, settings.resolved_database_url))
        if findings[-1].status is not Status.OK:
            return findings
        findings.append(await check_secret(settings, database))
        table_ok = table.status is Status.OK
        if check_tokens_upstream and findings[-1].status is Status.OK and table_ok:
            findings += await _with_keys(settings, database, lambda keys: check_tokens(settings, keys))
        elif check_tokens_upstream:
            unchecked = "the secret check" if table_ok else "the model table check"
            findings.append(Finding("tokens", Status.WARNING, f"not checked: see {unchecked}"))
    finally:
        await database.dispose()
    return findings


async def _with_keys(
    settings: Settings, database: Database, work: Callable[[KeyStore], Awaitable[list[Finding]]]
) -> list[Finding]:
    cipher = TokenCipher(load_or_create_secret(settings.data_dir, settings.secret_key))
    return await work(KeyStore(database, cipher))
