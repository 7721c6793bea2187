"""The `claude-code-api` command: serve, keys and the other operator commands.

Each command reads the environment into Settings once, reports every bad variable by name and exits
non-zero, then calls into the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, cast

import click
import uvicorn
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from claude_code_api import __version__
from claude_code_api.app import create_app
from claude_code_api.cli_credentials import credentials, read_secret
from claude_code_api.config import ConfigurationError, Settings, load_settings
from claude_code_api.doctor import Status, diagnose
from claude_code_api.errors import GatewayError
from claude_code_api.gateway import Gateway
from claude_code_api.logs import configure_logging
from claude_code_api.security.certs import (
    DEFAULT_VALID_DAYS,
    CertificateError,
    certs_dir,
    check_certificate,
    default_paths,
    generate_self_signed,
)
from claude_code_api.security.data_dir import DataDirError, secure_data_dir
from claude_code_api.security.encryption import TokenCipher, load_or_create_secret
from claude_code_api.store.credential_kinds import parse_ranks
from claude_code_api.store.database import Database, normalize_database_url
from claude_code_api.store.keys import BUDGET_PERIODS, ApiKey, KeyLimits, KeyStore
from claude_code_api.store.verifier import open_secret

logger = logging.getLogger("claude_code_api")

T = TypeVar("T")

# In-flight requests get this long after SIGTERM before they are cancelled (container stop: 10 s).
SHUTDOWN_GRACE_SECONDS = 7


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(f"Bad configuration: {exc}") from None


@click.group()
@click.version_option(__version__, prog_name="claude-code-api")
def main() -> None:
    """An OpenAI-compatible API in front of Claude Code."""


@main.command()
def serve() -> None:
    """Serves the API on PORT (and the admin site on HTTPS_PORT when a certificate exists)."""
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format == "json")
    try:
        asyncio.run(_serve(settings))
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
    # Every request and Claude process is done. Tearing the interpreter's modules down would take
    # seconds more that a container's stop deadline (10 s) does not have.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve`, which runs several of them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listener(app: Any, settings: Settings, port: int, **tls: Any) -> _Server:
    return _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=port,
            log_config=None,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            server_header=False,
            # uvicorn would otherwise take X-Forwarded-Proto from local clients as the scheme, letting
            # any local process pass the HTTPS-only check; the admin site reads that header itself,
            # and only with TRUST_PROXY_HEADERS.
            proxy_headers=False,
            **tls,
        )
    )


def _admin_listener(app: Any, settings: Settings) -> _Server | None:
    """The HTTPS listener of the admin site, or None (saying why) when there is no certificate."""
    cert_file, key_file = settings.resolved_tls_files
    configured = settings.tls_cert_file is not None or settings.tls_key_file is not None
    browse_host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    if settings.trust_proxy_headers:
        logger.info(
            "TRUST_PROXY_HEADERS is set: the admin site also answers on port %d to requests a TLS proxy "
            "forwards with X-Forwarded-Proto: https",
            settings.port,
        )
        if not settings.admin_public_url:
            logger.warning(
                "ADMIN_PUBLIC_URL is not set: the admin site takes the host name the proxy forwards as its "
                "own. Set ADMIN_PUBLIC_URL to the URL browsers open (https://gw.example)."
            )
    try:
        if settings.https_port == settings.port:
            raise CertificateError(f"HTTPS_PORT and PORT are both {settings.port}")
        certificate = check_certificate(cert_file, key_file)
    except CertificateError as exc:
        if configured or cert_file.exists() or key_file.exists():
            raise click.ClickException(
                f"The admin site cannot be served over HTTPS: {exc}. Fix TLS_CERT_FILE/TLS_KEY_FILE, "
                "or run `claude-code-api generate-certs` for a self-signed certificate."
            ) from None
        logger.warning(
            "Admin site NOT served: no certificate at %s. Run `claude-code-api generate-certs` for a "
            "self-signed one, or set TLS_CERT_FILE and TLS_KEY_FILE, then restart.",
            cert_file,
        )
        return None
    if certificate.expired_at(datetime.now(UTC)):
        logger.warning(
            "The admin site's certificate %s expired on %s: browsers will refuse it. Renew it "
            "(`claude-code-api generate-certs` for a self-signed one).",
            cert_file,
            _when(certificate.not_valid_after),
        )
    logger.info(
        "Admin site: https://%s:%d/ (%scertificate %s for %s, valid until %s)",
        browse_host,
        settings.https_port,
        "self-signed " if certificate.self_signed else "",
        cert_file,
        ", ".join(certificate.names) or certificate.subject,
        _when(certificate.not_valid_after),
    )
    return _listener(app, settings, settings.https_port, ssl_certfile=cert_file, ssl_keyfile=key_file)


async def _serve(settings: Settings) -> None:
    if settings.uses_default_admin_password:
        logger.warning(
            "ADMIN_PASSWORD is the default 'changeme': anyone who reaches the admin site can create and "
            "revoke API keys. Set your own ADMIN_PASSWORD before exposing this server."
        )
    _secure_data_dir(settings)
    gateway = await _open_gateway(settings)
    app = create_app(settings, gateway)
    servers = [_listener(app, settings, settings.port)]
    logger.info("API listening on http://%s:%d/v1", settings.host, settings.port)
    try:
        admin_server = _admin_listener(app, settings)
    except click.ClickException:
        await gateway.aclose()
        raise
    if admin_server is not None:
        servers.append(admin_server)

    loop = asyncio.get_running_loop()

    def stop() -> None:
        logger.info("Shutting down: finishing in-flight requests (at most %d s)", SHUTDOWN_GRACE_SECONDS)
        for server in servers:
            server.should_exit = True
        # Answers still running shortly before the deadline are ended, so that their clients hear why
        # instead of being cut off when uvicorn cancels what is left.
        loop.call_later(SHUTDOWN_GRACE_SECONDS - 1.5, gateway.runner.end_running_answers)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)

    async def run(server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit:
            # uvicorn exits the process when its port is taken; stop the other listener instead, so that
            # the store is closed and the message below names the problem.
            stop()

    try:
        await asyncio.gather(*(run(server) for server in servers))
    finally:
        await gateway.aclose()
    if not all(server.started for server in servers):
        raise click.ClickException("A listener could not start; see the log above.")


def _secure_data_dir(settings: Settings) -> None:
    """Makes DATA_DIR owner-only (0700, files 0600), saying what it changed; stops when it cannot."""
    try:
        for change in secure_data_dir(settings.data_dir):
            logger.warning("Made private to its owner (DATA_DIR is owner-only): %s", change)
    except (DataDirError, OSError) as exc:
        raise click.ClickException(f"DATA_DIR cannot be made private: {exc}") from None


async def _open_gateway(settings: Settings) -> Gateway:
    """Opens the store and limits, or stops with one line that says the store is out of reach (an
    unreachable Redis is a GatewayError that says so)."""
    try:
        return await Gateway.open(settings)
    except (OSError, SQLAlchemyError) as exc:
        shown = make_url(normalize_database_url(settings.resolved_database_url)).render_as_string(
            hide_password=True
        )
        raise click.ClickException(
            f"Cannot open the key store at {shown} ({type(exc).__name__}); check DATABASE_URL and that "
            "the database is running."
        ) from None


# --- certificates --------------------------------------------------------------------------------


@main.command("generate-certs")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="Another DNS name or IP address the certificate is for (repeatable); "
    "localhost, 127.0.0.1 and ::1 are always included.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=DEFAULT_VALID_DAYS,
    show_default=True,
    help="How long the certificate is valid.",
)
@click.option("--if-missing", is_flag=True, help="Keep a certificate that is already there.")
def generate_certs(hosts: tuple[str, ...], days: int, if_missing: bool) -> None:
    """Writes a self-signed certificate for the admin site into DATA_DIR/certs (owner-only)."""
    settings = _settings()
    cert_file, key_file = default_paths(settings.data_dir)
    if if_missing and settings.tls_cert_file is not None:
        click.echo(f"TLS_CERT_FILE is set: `serve` uses {settings.tls_cert_file}; nothing to generate.")
        return
    if if_missing and cert_file.exists() and key_file.exists():
        click.echo(f"Keeping the certificate already in {certs_dir(settings.data_dir)}.")
        return
    try:
        certificate = generate_self_signed(certs_dir(settings.data_dir), hosts, days)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    click.echo(f"Wrote {cert_file} and {key_file} (readable by their owner only).")
    click.echo(f"Valid for {', '.join(certificate.names)} until {_when(certificate.not_valid_after)}.")
    if settings.tls_cert_file is not None:
        click.echo(f"Note: TLS_CERT_FILE is set, so `serve` uses {settings.tls_cert_file} instead.")
    click.echo(
        f"`claude-code-api serve` now serves the admin site on https://localhost:{settings.https_port}/ "
        "(browsers ask once to accept the self-signed certificate)."
    )


# --- credentials and keys --------------------------------------------------------------------------

main.add_command(credentials)


@main.group()
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
    settings = _settings()
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
    record = _with_key_store(_settings(), lambda store: store.update_key(key_id, credentials=ranks, **limits))
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
    records = _with_key_store(_settings(), lambda store: store.list_keys())
    rows = [("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "STATUS", "TOKEN", "CREDENTIALS")]
    rows += [
        (
            r.id,
            r.name,
            r.prefix,
            _when(r.created_at),
            _when(r.last_used_at),
            "revoked" if r.revoked_at else "expired" if not r.is_active else "active",
            r.token_health.summary,
            _describe_ranks(r),
        )
        for r in records
    ]
    _print_table(rows)
    for r in records:
        if r.token_health.state in ("rejected", "limited"):
            click.echo(f"\n{r.id}: {r.token_health.detail}")


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revokes a key by id (or by the full key); it is refused from the next request on."""
    record: ApiKey | None = _with_key_store(
        _settings(), lambda store: store.revoke_key(key_id), check_secret=False
    )
    if record is None:
        raise click.ClickException(f"No key with id {key_id}.")
    click.echo(f"Revoked key {record.id} ({record.name}).")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _print_table(rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@main.command()
@click.option(
    "--check-tokens",
    is_flag=True,
    help="Also send one minimal request per credential to check it upstream (and record on each key).",
)
def doctor(check_tokens: bool) -> None:
    """Checks configuration, data directory, database, Redis, Claude Code and certificate."""
    settings = _settings()
    findings = asyncio.run(diagnose(settings, check_tokens_upstream=check_tokens))
    _print_table([("CHECK", "STATUS", "DETAIL"), *((f.check, f.status, f.detail) for f in findings)])
    problems = sum(1 for f in findings if f.status is Status.PROBLEM)
    if problems:
        raise click.ClickException(f"{problems} problem(s) found.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
