"""Settings: every environment variable the gateway reads, with its type, default and help.

`Settings` is built once at start (by `cli.py`) and passed in; no module holds settings of its own.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from claude_code_api.security.certs import default_paths

DEFAULT_ADMIN_PASSWORD = "changeme"
REDIS_SCHEMES = ("redis", "rediss", "unix")


class SystemPromptMode(StrEnum):
    """Where a client's system and developer messages go."""

    APPEND = "append"
    REPLACE = "replace"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """The gateway's configuration, read from the environment (see the README's table)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address the API and admin site listen on.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of the OpenAI-compatible API.")
    https_port: int = Field(8443, ge=1, le=65535, description="HTTPS port of the admin site.")
    data_dir: Path = Field(
        Path("./data"),
        description="Directory for the SQLite database, the generated secret and certificates.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the key store; default: SQLite in DATA_DIR."
    )
    secret_key: str | None = Field(
        None,
        min_length=16,
        description="Secret that encrypts OAuth tokens at rest; default: generated into DATA_DIR.",
    )
    admin_password: str = Field(
        DEFAULT_ADMIN_PASSWORD, min_length=1, description="Password of the admin site."
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (with its chain) of the admin site's HTTPS listener; "
        "default: DATA_DIR/certs/cert.pem, written by `claude-code-api generate-certs`.",
    )
    tls_key_file: Path | None = Field(
        None, description="Unencrypted PEM private key of TLS_CERT_FILE; default: DATA_DIR/certs/key.pem."
    )
    trust_proxy_headers: bool = Field(
        False,
        description="Serve the admin site on the plain-HTTP port to requests a TLS-terminating proxy "
        "forwards (X-Forwarded-Proto: https, client address from X-Forwarded-For). Set it only when the "
        "port is reachable through that proxy alone.",
    )
    admin_public_url: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="The admin site's URL as browsers open it (https://gw.example, or several, "
        "comma-separated); the CSRF check accepts only these origins and other host names are refused. "
        "Default: every name of the certificate, and HOST, on HTTPS_PORT; behind a trusted proxy, the "
        "host it forwards.",
    )
    admin_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="Hours an admin login lasts before the password is asked again."
    )
    claude_code_oauth_token: str | None = Field(
        None, description="Default OAuth token for `claude-code-api keys create`."
    )
    anthropic_base_url: str | None = Field(
        None, description="Upstream URL passed on to Claude Code (for proxies and tests)."
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(LogFormat.TEXT, description="`text` or `json` log lines.")
    metrics_token: str | None = Field(
        None,
        min_length=16,
        description="Bearer token a Prometheus scraper sends for GET /metrics, then served on both ports; "
        "unset: /metrics is served only where the admin site is (HTTPS listener), 403 on the API port.",
    )
    max_request_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above it)."
    )
    strict_request_fields: bool = Field(
        False,
        description="Refuse request fields the gateway does not know with a 400 naming them; "
        "off: they are ignored and named in the x-ignored-fields header.",
    )
    image_url_fetch: bool = Field(
        False,
        description="Fetch the http(s) image URLs requests carry and pass the images to Claude; "
        "off: such images get a 400 and clients send data: URLs.",
    )
    image_url_max_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="Largest image fetched from a URL (400 above it)."
    )
    image_url_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds fetching one image URL may take in all (400 past it)."
    )
    image_url_allow_private: bool = Field(
        False,
        description="Also fetch image URLs whose host is a loopback, private or link-local address; "
        "off, they get a 400, so clients cannot reach the gateway's own network through it.",
    )
    system_prompt_mode: SystemPromptMode = Field(
        SystemPromptMode.APPEND,
        description="`append`: client instructions follow Claude Code's own system prompt; "
        "`replace`: they replace it.",
    )
    claude_tools: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Claude Code tools API clients may use (comma-separated); none by default.",
    )
    first_token_timeout: float = Field(
        120.0, gt=0, description="Seconds to wait for Claude's first output before a 504."
    )
    idle_timeout: float = Field(
        120.0, gt=0, description="Seconds of silence mid-answer before the run is ended (504)."
    )
    upstream_max_retries: int = Field(
        2, ge=0, le=10, description="Retries Claude Code makes on an upstream 429 or 5xx."
    )
    warm_processes: int = Field(
        1,
        ge=0,
        le=16,
        description="Spare Claude processes started ahead of need per key token and options while "
        "none of theirs is idle; 0 also ends each process after its answer (a new one per request).",
    )
    warm_idle_seconds: float = Field(
        300.0, gt=0, description="Seconds an idle Claude process is kept before it is retired."
    )
    tool_call_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds a Claude process waits inside a client's function calls for the request "
        "that brings their results before it is ended.",
    )
    max_claude_processes: int | None = Field(
        None,
        ge=1,
        description="Most Claude processes alive at once; default: derived from free memory and the "
        "measured size of a process.",
    )
    turns_per_core: int = Field(
        2,
        ge=0,
        le=64,
        description="Turns that may want a CPU at once, per core, before the next waits for one "
        "(each turn counted by the share of its time its process wanted a CPU); 0: no turn waits.",
    )
    queue_timeout: float = Field(
        30.0, ge=0, description="Seconds a request waits for a Claude process before a 429."
    )
    run_dir: Path | None = Field(
        None, description="Where per-request working directories go; default: system temp."
    )
    model_table: Path | None = Field(
        None,
        description="TOML file of the upstream model ids each credential kind uses for the gateway's model "
        "names, over the built-in ones; default: DATA_DIR/models.toml when it exists.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis (redis://, rediss:// or unix://) that shares per-key rate and concurrency "
        "limits between workers and instances; default: each process counts on its own.",
    )
    redis_key_prefix: str = Field(
        "claude-code-api",
        min_length=1,
        max_length=100,
        description="Prefix of every key the gateway writes to REDIS_URL, so gateways can share a Redis.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("claude_tools", mode="before")
    @classmethod
    def _split_tools(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("admin_public_url", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("admin_public_url")
    @classmethod
    def _https_origins(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            try:
                parts.port  # noqa: B018 - raises ValueError for a bad port
            except ValueError:
                raise ValueError(f"{url!r} has a bad port") from None
            if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"{url!r} is not https://HOST[:PORT] (the admin site is served over HTTPS)")
            if parts.query or parts.fragment or parts.username:
                raise ValueError(f"{url!r} is not https://HOST[:PORT]")
        return value

    @field_validator(
        "claude_code_oauth_token",
        "anthropic_base_url",
        "secret_key",
        "database_url",
        "metrics_token",
        "max_claude_processes",
        "run_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `VAR=` in a compose or .env file means "not set", not "set to nothing".
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.partition("://")[0] not in REDIS_SCHEMES:
            # The URL itself is left out: it may hold a password.
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("tls_cert_file", "tls_key_file", "model_table", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: Any) -> Any:
        return value or None

    @model_validator(mode="after")
    def _shared_database_needs_a_shared_secret(self) -> Settings:
        if self.database_url and not self.database_url.startswith("sqlite") and not self.secret_key:
            # Each instance would generate its own secret and fail to decrypt the others' tokens.
            raise ValueError(
                "SECRET_KEY must be set when DATABASE_URL names a shared database: every instance "
                "needs the same secret to read the OAuth tokens the others stored"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The key store's URL: DATABASE_URL, or the SQLite file in DATA_DIR."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'claude-code-api.db').resolve()}"

    @property
    def uses_default_admin_password(self) -> bool:
        return self.admin_password == DEFAULT_ADMIN_PASSWORD

    @property
    def resolved_model_table(self) -> Path:
        """Where the operator's model table is read from: MODEL_TABLE, or DATA_DIR/models.toml."""
        return self.model_table or self.data_dir / "models.toml"

    @property
    def resolved_tls_files(self) -> tuple[Path, Path]:
        """The admin site's certificate and key: TLS_CERT_FILE and TLS_KEY_FILE, or DATA_DIR/certs/."""
        default_cert, default_key = default_paths(self.data_dir)
        return (self.tls_cert_file or default_cert, self.tls_key_file or default_key)


class ConfigurationError(Exception):
    """Raised when the environment holds a bad value; the message names every bad variable."""


def load_settings(**overrides: Any) -> Settings:
    """Reads the environment into Settings; raises ConfigurationError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # The value is left out on purpose: it may be a secret.
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{str(error['loc'][0]).upper()}: {message}" if error["loc"] else message)
        raise ConfigurationError("; ".join(problems)) from None
