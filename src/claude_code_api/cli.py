"""The `claude-code-api` command: serve, keys and the other operator commands.

Each command reads the environment into Settings once, reports every bad variable by name and exits
non-zero, then calls into the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import uvicorn
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from claude_code_api import __version__
from claude_code_api.app import create_app
from claude_code_api.cli_credentials import credentials
from claude_code_api.cli_keys import keys
from claude_code_api.cli_support import print_table, settings_or_exit, when
from claude_code_api.config import Settings
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
from claude_code_api.store.database import normalize_database_url

logger = logging.getLogger("claude_code_api")

T = TypeVar("T")

# In-flight requests get this long after SIGTERM before they are cancelled (container stop: 10 s).
SHUTDOWN_GRACE_SECONDS = 7


@click.group()
@click.version_option(__version__, prog_name="claude-code-api")
def main() -> None:
    """An OpenAI-compatible API in front of Claude Code."""


@main.command()
def serve() -> None:
    """Serves the API on PORT (and the admin site on HTTPS_PORT when a certificate exists)."""
    settings = settings_or_exit()
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
            when(certificate.not_valid_after),
        )
    logger.info(
        "Admin site: https://%s:%d/ (%scertificate %s for %s, valid until %s)",
        browse_host,
        settings.https_port,
        "self-signed " if certificate.self_signed else "",
        cert_file,
        ", ".join(certificate.names) or certificate.subject,
        when(certificate.not_valid_after),
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
    settings = settings_or_exit()
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
    click.echo(f"Valid for {', '.join(certificate.names)} until {when(certificate.not_valid_after)}.")
    if settings.tls_cert_file is not None:
        click.echo(f"Note: TLS_CERT_FILE is set, so `serve` uses {settings.tls_cert_file} instead.")
    click.echo(
        f"`claude-code-api serve` now serves the admin site on https://localhost:{settings.https_port}/ "
        "(browsers ask once to accept the self-signed certificate)."
    )


# --- credentials and keys --------------------------------------------------------------------------

main.add_command(credentials)


main.add_command(keys)


@main.command()
@click.option(
    "--check-tokens",
    is_flag=True,
    help="Also send one minimal request per credential to check it upstream (and record on each key).",
)
def doctor(check_tokens: bool) -> None:
    """Checks configuration, data directory, database, Redis, Claude Code and certificate."""
    settings = settings_or_exit()
    findings = asyncio.run(diagnose(settings, check_tokens_upstream=check_tokens))
    print_table([("CHECK", "STATUS", "DETAIL"), *((f.check, f.status, f.detail) for f in findings)])
    problems = sum(1 for f in findings if f.status is Status.PROBLEM)
    if problems:
        raise click.ClickException(f"{problems} problem(s) found.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
