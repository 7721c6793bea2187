"""The `keys` commands: create, update, list and revoke API keys, on credentials in ranks and with limits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, cast

import click

from claude_code_api.cli_credentials import read_secret
from claude_code_api.cli_support import print_table, settings_or_exit, when
from claude_code_api.config import Settings
from claude_code_api.errors import GatewayError
from claude_code_api.security.encryption import TokenCipher, load_or_create_secret
from claude_code_api.store.credential_kinds import parse_ranks
from claude_code_api.store.database import Database
from claude_code_api.store.keys import BUDGET_PERIODS, ApiKey, KeyLimits, KeyStore
from claude_code_api.store.verifier import open_secret

T = TypeVar("T")


@click.group()
def keys() -> None:
    """Create, list, limit and revoke API keys."""


def _with_key_store(
    settings: Settings, work: Callable[[KeyStore], Awaitable[T]], *, check_secret: bool = True
) -> T:
    """Runs `work` on the key store; unless told not to (revoking needs no secret), first stops with one
    line when the secret in force is not the store's, so that no token is stored under a second secret."""

    async def run() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = Database.from_url(settings.resolved_database_url)
        try:
            await database.upgrade()
            if check_secret:
                secret = await open_secret(database, settings.data_dir, settings.secret_key)
            else:
                secret = load_or_create_secret(settings.data_dir, settings.secret_key)
            return await work(KeyStore(database, TokenCipher(secret)))
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


class _NoLimit(Enum):
    """What `none` (or `all` for --models) turns an option into: the limit is lifted."""

    NO_LIMIT = "none"


NO_LIMIT = _NoLimit.NO_LIMIT


class _Count(click.ParamType[int | _NoLimit, str]):
    name = "N|none"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> int | _NoLimit:
        if value.strip().lower() == "none":
            return NO_LIMIT
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            self.fail("give a whole number of at least 1, or none", param, ctx)
        return count


class _Usd(click.ParamType[float | _NoLimit, str]):
    name = "USD|none"

    def convert(
        self, value: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | _NoLimit:
        if value.strip().lower() == "none":
            return NO_LIMIT
        try:
            amount = float(value.strip().removeprefix("$"))
        except ValueError:
            amount = -1.0
        if not 0 <= amount < float("inf"):
            self.fail("give an amount of US dollars such as 5 or 12.50, or none", param, ctx)
        return amount


class _Models(click.ParamType[list[str] | _NoLimit, str]):
    name = "MODEL,...|all"

    def convert(
        self, value: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[str] | _NoLimit:
        if value.strip().lower() == "all":
            return NO_LIMIT
        models = [model.strip() for model in value.split(",") if model.strip()]
        if not models:
            self.fail("give model names separated by commas (sonnet,gpt-4), or all", param, ctx)
        return models


_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class _Expiry(click.ParamType[datetime | _NoLimit, str]):
    name = "WHEN|none"

    def convert(
        self, value: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime | _NoLimit:
        text = value.strip().lower()
        if text == "none":
            return NO_LIMIT
        now = datetime.now(UTC)
        duration = _DURATION.fullmatch(text)
        if duration is not None:
            amount, unit = duration.groups()
            return now + timedelta(**{_DURATION_UNITS[unit]: int(amount)})
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(
                "give a date (2026-12-31), a date and time (2026-12-31T18:00, UTC unless it has an "
                "offset), a duration from now (90m, 12h, 30d, 2w), or none",
                param,
                ctx,
            )
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if moment <= now:
            self.fail(f"{moment:%Y-%m-%d %H:%M} UTC is in the past", param, ctx)
        return moment


def _limit_options(command: Callable[..., None]) -> Callable[..., None]:
    """The per-key limit options that `keys create` and `keys update` share."""
    options = [
        click.option("--rpm", type=_Count(), help="Most requests per minute; none: no limit."),
        click.option("--concurrency", type=_Count(), help="Most requests at once; none: no limit."),
        click.option(
            "--models",
            type=_Models(),
            help="Comma-separated models the key may use (a name allows its aliases too); all: any.",
        ),
        click.option(
            "--expires",
            type=_Expiry(),
            help="When the key stops working: a date or date and time (UTC unless given), or a "
            "duration from now such as 30d, 12h, 2w; none: never.",
        ),
        click.option(
            "--budget-usd",
            type=_Usd(),
            help="Most the key may spend, in US dollars of Claude Code's reported cost; none: no budget.",
        ),
        click.option(
            "--budget-period",
            type=click.Choice([*BUDGET_PERIODS, "none"]),
            help="When the spend starts again from zero (UTC; weeks start on Monday); none: never.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _limits_from_options(options: dict[str, Any]) -> KeyLimits:
    """The limits the options name: an option left out is not in them, `none` is None."""
    names = {
        "rpm": "rpm_limit",
        "concurrency": "concurrency_limit",
        "models": "allowed_models",
        "expires": "expires_at",
        "budget_usd": "budget_usd",
        "budget_period": "budget_period",
    }
    limits: dict[str, Any] = {}
    for option, limit in names.items():
        value = options.get(option)
        if value is not None:
            limits[limit] = None if value in (NO_LIMIT, "none") else value
    return cast(KeyLimits, limits)


def _describe_limits(record: ApiKey) -> str:
    limits = []
    if record.rpm_limit is not None:
        limits.append(f"{record.rpm_limit} requests per minute")
    if record.concurrency_limit is not None:
        limits.append(f"{record.concurrency_limit} at once")
    if record.allowed_models is not None:
        limits.append(f"models {', '.join(record.allowed_models)}")
    if record.expires_at is not None:
        limits.append(f"expires {record.expires_at:%Y-%m-%d %H:%M} UTC")
    if record.budget_usd is not None:
        period = f" per {record.budget_period}" if record.budget_period else ""
        limits.append(f"budget ${record.budget_usd:.2f}{period}")
    return "Limits: " + ("; ".join(limits) if limits else "none")


def _describe_ranks(record: ApiKey) -> str:
    """The key's credentials, best rank first: `a,b > c`."""
    return " > ".join(",".join(rank) for rank in record.credential_ranks) or "-"


_CREDENTIAL_OPTION = click.option(
    "--credential",
    "credential_ranks",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="A rank of credentials the key runs on, best first: one option per rank, commas between "
    "credentials of equal rank (see `credentials list`).",
)


@keys.command("create")
@click.option("--name", required=True, help="A name that says who or what uses the key.")
@_CREDENTIAL_OPTION
@click.option(
    "--oauth-token",
    envvar="CLAUDE_CODE_OAUTH_TOKEN",
    help="Without --credential: a Claude OAuth token (sk-ant-oat01-...) for a subscription credential "
    "of the key's own; default: CLAUDE_CODE_OAUTH_TOKEN.",
)
@click.option(
    "--oauth-token-file", metavar="PATH", help="Reads --oauth-token from PATH ('-': standard input)."
)
@_limit_options
@click.pass_context
def create_key(
    ctx: click.Context,
    /,
    name: str,
    credential_ranks: tuple[str, ...],
    oauth_token: str | None,
    oauth_token_file: str | None,
    **options: Any,
) -> None:
    """Creates an API key and prints it once."""
    settings = settings_or_exit()
    from_environment = ctx.get_parameter_source("oauth_token") is click.core.ParameterSource.ENVIRONMENT
    if credential_ranks and from_environment:
        oauth_token = None
    oauth_token = read_secret("oauth-token", oauth_token, oauth_token_file)
    if credential_ranks and oauth_token:
        raise click.ClickException("Give --credential or --oauth-token, not both.")
    if not credential_ranks and not oauth_token:
        raise click.ClickException(
            "Invalid OAuth token: none given. Pass --credential NAME, or --oauth-token or set "
            "CLAUDE_CODE_OAUTH_TOKEN (`claude setup-token` prints a long-lived one)."
        )
    limits = _limits_from_options(options)
    ranks = _parse_ranks(credential_ranks) if credential_ranks else None
    record, api_key = _with_key_store(
        settings,
        lambda store: store.create_key(name, None if ranks else oauth_token, credentials=ranks, **limits),
    )
    click.echo(f"Created key {record.id} ({record.name}). {_describe_limits(record)}.")
    click.echo(f"Credentials: {_describe_ranks(record)}.")
    click.echo("The key is shown only this once:")
    click.echo(api_key)


@keys.command("update")
@click.argument("key_id")
@_CREDENTIAL_OPTION
@_limit_options
def update_key(key_id: str, credential_ranks: tuple[str, ...], **options: Any) -> None:
    """Changes the limits of a key, or its credentials (all ranks at once); options left out stay as
    they are."""
    limits = _limits_from_options(options)
    ranks = _parse_ranks(credential_ranks) if credential_ranks else None
    if not limits and ranks is None:
        raise click.ClickException("Nothing to change: give at least one limit or --credential (see --help).")
    record = _with_key_store(
        settings_or_exit(), lambda store: store.update_key(key_id, credentials=ranks, **limits)
    )
    if record is None:
        raise click.ClickException(f"No key with id {key_id}.")
    click.echo(f"Updated key {record.id} ({record.name}). {_describe_limits(record)}.")
    click.echo(f"Credentials: {_describe_ranks(record)}.")


def _parse_ranks(values: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    try:
        return parse_ranks(values)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


@keys.command("list")
def list_keys() -> None:
    """Lists every key: id, name, prefix, created, last used, status."""
    records = _with_key_store(settings_or_exit(), lambda store: store.list_keys())
    rows = [("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "STATUS", "TOKEN", "CREDENTIALS")]
    rows += [
        (
            r.id,
            r.name,
            r.prefix,
            when(r.created_at),
            when(r.last_used_at),
            "revoked" if r.revoked_at else "expired" if not r.is_active else "active",
            r.token_health.summary,
            _describe_ranks(r),
        )
        for r in records
    ]
    print_table(rows)
    for r in records:
        if r.token_health.state in ("rejected", "limited"):
            click.echo(f"\n{r.id}: {r.token_health.detail}")


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revokes a key by id (or by the full key); it is refused from the next request on."""
    record: ApiKey | None = _with_key_store(
        settings_or_exit(), lambda store: store.revoke_key(key_id), check_secret=False
    )
    if record is None:
        raise click.ClickException(f"No key with id {key_id}.")
    click.echo(f"Revoked key {record.id} ({record.name}).")
