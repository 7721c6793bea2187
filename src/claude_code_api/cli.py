"""The `claude-code-api` command: serve, keys and the other operator commands.

Each command reads the environment into Settings once, reports every bad variable by name and exits
non-zero, then calls into the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import click
import uvicorn

from claude_code_api import __version__
from claude_code_api.app import Gateway, create_app
from claude_code_api.config import ConfigurationError, Settings, load_settings
from claude_code_api.errors import GatewayError
from claude_code_api.logs import configure_logging
from claude_code_api.security.encryption import TokenCipher, load_or_create_secret
from claude_code_api.store.database import Database
from claude_code_api.store.keys import ApiKey, KeyStore

logger = logging.getLogger("claude_code_api")

T = TypeVar("T")

# In-flight requests get this long after SIGTERM before they are cancelled (container stop: 10 s).
SHUTDOWN_GRACE_SECONDS = 8


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


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve`, which runs several of them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(settings: Settings) -> None:
    if settings.uses_default_admin_password:
        logger.warning("ADMIN_PASSWORD is the default 'changeme': set your own before exposing this server.")
    gateway = await Gateway.open(settings)
    app = create_app(settings, gateway)
    servers = [
        _Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
                server_header=False,
            )
        )
    ]
    logger.info("API listening on http://%s:%d/v1", settings.host, settings.port)

    def stop() -> None:
        logger.info("Shutting down: finishing in-flight requests (at most %d s)", SHUTDOWN_GRACE_SECONDS)
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        await gateway.aclose()
    if not all(server.started for server in servers):
        raise click.ClickException("A listener could not start; see the log above.")


# --- keys ----------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


def _with_key_store(settings: Settings, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def run() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = Database.from_url(settings.resolved_database_url)
        try:
            await database.upgrade()
            cipher = TokenCipher(load_or_create_secret(settings.data_dir, settings.secret_key))
            return await work(KeyStore(database, cipher))
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


@keys.command("create")
@click.option("--name", required=True, help="A name that says who or what uses the key.")
@click.option(
    "--oauth-token",
    envvar="CLAUDE_CODE_OAUTH_TOKEN",
    help="The Claude OAuth token (sk-ant-oat01-...) the key runs with; default: CLAUDE_CODE_OAUTH_TOKEN.",
)
def create_key(name: str, oauth_token: str | None) -> None:
    """Creates an API key and prints it once."""
    settings = _settings()
    if not oauth_token:
        raise click.ClickException(
            "Invalid OAuth token: none given. Pass --oauth-token or set CLAUDE_CODE_OAUTH_TOKEN "
            "(`claude setup-token` prints a long-lived one)."
        )
    record, api_key = _with_key_store(settings, lambda store: store.create_key(name, oauth_token))
    click.echo(f"Created key {record.id} ({record.name}). It is shown only this once:")
    click.echo(api_key)


@keys.command("list")
def list_keys() -> None:
    """Lists every key: id, name, prefix, created, last used, status."""
    records = _with_key_store(_settings(), lambda store: store.list_keys())
    rows = [("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "STATUS")]
    rows += [
        (
            r.id,
            r.name,
            r.prefix,
            _when(r.created_at),
            _when(r.last_used_at),
            "active" if r.is_active else "revoked",
        )
        for r in records
    ]
    _print_table(rows)


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revokes a key by id (or by the full key); it is refused from the next request on."""
    record: ApiKey | None = _with_key_store(_settings(), lambda store: store.revoke_key(key_id))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
