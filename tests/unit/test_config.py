"""Tests of config.py: defaults, values read from the environment, and errors that name a variable."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import pytest
from pydantic import ValidationError

from claude_code_api.config import (
    DEFAULT_ADMIN_PASSWORD,
    ConfigurationError,
    LogFormat,
    Settings,
    SystemPromptMode,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Leaves none of the gateway's variables set, in any case, so that defaults show."""
    fields = set(Settings.model_fields)
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("host", "127.0.0.1"),
        ("port", 8000),
        ("https_port", 8443),
        ("data_dir", Path("data")),
        ("database_url", None),
        ("secret_key", None),
        ("admin_password", DEFAULT_ADMIN_PASSWORD),
        ("tls_cert_file", None),
        ("tls_key_file", None),
        ("trust_proxy_headers", False),
        ("admin_session_hours", 12.0),
        ("claude_code_oauth_token", None),
        ("anthropic_base_url", None),
        ("log_level", "INFO"),
        ("log_format", LogFormat.TEXT),
        ("max_request_bytes", 20 * 1024 * 1024),
        ("system_prompt_mode", SystemPromptMode.APPEND),
        ("claude_tools", []),
        ("first_token_timeout", 120.0),
        ("idle_timeout", 120.0),
        ("upstream_max_retries", 2),
        ("warm_processes", 1),
        ("warm_idle_seconds", 300.0),
        ("max_claude_processes", None),
        ("queue_timeout", 30.0),
        ("run_dir", None),
    ],
)
def test_default(field, default):
    assert getattr(load_settings(), field) == default


def test_default_admin_password_is_flagged():
    assert load_settings().uses_default_admin_password is True


def test_default_database_is_sqlite_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'claude-code-api.db'}"


def test_default_tls_files_are_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    cert, key = load_settings().resolved_tls_files
    assert cert.is_relative_to(tmp_path)
    assert key.is_relative_to(tmp_path)
    assert cert != key


def test_configured_tls_files_win(monkeypatch, tmp_path):
    monkeypatch.setenv("TLS_CERT_FILE", str(tmp_path / "c.pem"))
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "k.pem"))
    assert load_settings().resolved_tls_files == (tmp_path / "c.pem", tmp_path / "k.pem")


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("PORT", "9000", "port", 9000),
        ("HTTPS_PORT", "443", "https_port", 443),
        ("DATABASE_URL", "postgresql+asyncpg://u@db/k", "database_url", "postgresql+asyncpg://u@db/k"),
        ("SECRET_KEY", "0123456789abcdef", "secret_key", "0123456789abcdef"),
        ("ADMIN_PASSWORD", "correct horse", "admin_password", "correct horse"),
        ("TRUST_PROXY_HEADERS", "true", "trust_proxy_headers", True),
        ("ADMIN_SESSION_HOURS", "0.5", "admin_session_hours", 0.5),
        ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-x", "claude_code_oauth_token", "sk-ant-oat01-x"),
        ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9999", "anthropic_base_url", "http://127.0.0.1:9999"),
        ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("LOG_FORMAT", "json", "log_format", LogFormat.JSON),
        ("MAX_REQUEST_BYTES", "1024", "max_request_bytes", 1024),
        ("SYSTEM_PROMPT_MODE", "replace", "system_prompt_mode", SystemPromptMode.REPLACE),
        ("FIRST_TOKEN_TIMEOUT", "2.5", "first_token_timeout", 2.5),
        ("IDLE_TIMEOUT", "30", "idle_timeout", 30.0),
        ("UPSTREAM_MAX_RETRIES", "0", "upstream_max_retries", 0),
        ("WARM_PROCESSES", "0", "warm_processes", 0),
        ("WARM_IDLE_SECONDS", "60", "warm_idle_seconds", 60.0),
        ("MAX_CLAUDE_PROCESSES", "4", "max_claude_processes", 4),
        ("QUEUE_TIMEOUT", "0", "queue_timeout", 0.0),
        ("RUN_DIR", "/srv/runs", "run_dir", Path("/srv/runs")),
        ("REDIS_URL", "redis://:pw@cache:6379/2", "redis_url", "redis://:pw@cache:6379/2"),
        ("REDIS_URL", "rediss://cache:6380", "redis_url", "rediss://cache:6380"),
        ("REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
        ("REDIS_KEY_PREFIX", "gateway-eu", "redis_key_prefix", "gateway-eu"),
        ("port", "9001", "port", 9001),
    ],
)
def test_environment_variable_is_read(monkeypatch, variable, value, field, expected):
    monkeypatch.setenv(variable, value)
    if variable == "DATABASE_URL" and not value.startswith("sqlite"):
        monkeypatch.setenv("SECRET_KEY", "a-secret-every-instance-shares")
    assert getattr(load_settings(), field) == expected


def test_a_shared_database_needs_a_secret_key(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://gateway@db/keys")

    with pytest.raises(ConfigurationError, match="SECRET_KEY must be set"):
        load_settings()


def test_a_sqlite_database_generates_its_own_secret(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///keys.db")

    assert load_settings().secret_key is None


@pytest.mark.parametrize(
    ("value", "tools"),
    [
        ("Read", ["Read"]),
        ("Read,Grep,Glob", ["Read", "Grep", "Glob"]),
        (" Read , Grep,, Glob ,", ["Read", "Grep", "Glob"]),
        ("Bash(git:*),WebFetch", ["Bash(git:*)", "WebFetch"]),
        ("", []),
        (" , ,", []),
    ],
)
def test_claude_tools_is_split_on_commas(monkeypatch, value, tools):
    monkeypatch.setenv("CLAUDE_TOOLS", value)
    assert load_settings().claude_tools == tools


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        # As in `environment: {SECRET_KEY: "${SECRET_KEY:-}"}`: set but empty means "use the default".
        ("DATABASE_URL", "database_url"),
        ("SECRET_KEY", "secret_key"),
        ("MAX_CLAUDE_PROCESSES", "max_claude_processes"),
        ("RUN_DIR", "run_dir"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "claude_code_oauth_token"),
        ("ANTHROPIC_BASE_URL", "anthropic_base_url"),
        ("TLS_CERT_FILE", "tls_cert_file"),
        ("TLS_KEY_FILE", "tls_key_file"),
        ("REDIS_URL", "redis_url"),
    ],
)
def test_empty_optional_variable_counts_as_unset(monkeypatch, variable, field):
    monkeypatch.setenv(variable, "")
    assert getattr(load_settings(), field) is None


def test_admin_password_other_than_the_default_is_not_flagged(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "a long and private passphrase")
    assert load_settings().uses_default_admin_password is False


def test_configured_database_url_wins(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/keys.db")
    assert load_settings().resolved_database_url == "sqlite:////srv/keys.db"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty-eighty"),
        ("PORT", "0"),
        ("PORT", "65536"),
        ("HTTPS_PORT", "-443"),
        ("SECRET_KEY", "Sh0rt-S3cr3t"),
        ("ADMIN_PASSWORD", ""),
        ("TRUST_PROXY_HEADERS", "perhaps-maybe"),
        ("ADMIN_SESSION_HOURS", "0"),
        ("ADMIN_SESSION_HOURS", "721"),
        ("LOG_LEVEL", "loud-and-clear"),
        ("LOG_FORMAT", "xml-please"),
        ("MAX_REQUEST_BYTES", "1023"),
        ("SYSTEM_PROMPT_MODE", "prepend-mode"),
        ("FIRST_TOKEN_TIMEOUT", "0"),
        ("IDLE_TIMEOUT", "-5"),
        ("IDLE_TIMEOUT", "soon-ish"),
        ("UPSTREAM_MAX_RETRIES", "11"),
        ("UPSTREAM_MAX_RETRIES", "-1"),
        ("WARM_PROCESSES", "17"),
        ("WARM_PROCESSES", "a-few-please"),
        ("WARM_IDLE_SECONDS", "0"),
        ("MAX_CLAUDE_PROCESSES", "0"),
        ("QUEUE_TIMEOUT", "-1"),
        ("REDIS_URL", "http://:S3cretPw@cache:6379"),
        ("REDIS_URL", "cache:6379"),
        ("REDIS_KEY_PREFIX", ""),
    ],
)
def test_bad_variable_gives_configuration_error_naming_it(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    if len(value) > 3:
        assert value not in message


def test_short_secret_key_is_refused_without_echoing_it(monkeypatch):
    secret = "S3cr3t-only-15c"
    assert len(secret) == 15
    monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "SECRET_KEY" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    # Not even the printed traceback shows it: the validation error with the value is not chained.
    assert secret not in "".join(traceback.format_exception(caught.value))


def test_every_bad_variable_is_named_in_one_error(monkeypatch):
    monkeypatch.setenv("PORT", "not-a-port")
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    named = {problem.split(":")[0] for problem in str(caught.value).split("; ")}
    assert named == {"PORT", "LOG_FORMAT", "SECRET_KEY"}


def test_overrides_are_checked_like_the_environment():
    assert load_settings(port=9100).port == 9100
    with pytest.raises(ConfigurationError, match=r"^PORT: "):
        load_settings(port=0)


def test_settings_cannot_be_changed_once_built():
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
