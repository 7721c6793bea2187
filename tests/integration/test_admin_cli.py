"""`generate-certs`, and what `serve` decides and says about the admin site's HTTPS listener."""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from claude_code_api.app import create_app
from claude_code_api.cli import _admin_listener, main
from claude_code_api.security.certs import default_paths, generate_self_signed
from tests.integration.admin_site import make_admin_settings
from tests.integration.gateway_harness import free_port


def run(args: list[str], data_dir: Path, **env: str) -> Result:
    return CliRunner().invoke(main, args, env={"DATA_DIR": str(data_dir), **env}, catch_exceptions=False)


def test_generate_certs_writes_an_owner_only_pair_into_data_dir_certs(tmp_path):
    result = run(["generate-certs", "--host", "gw.example.com", "--host", "10.0.0.5"], tmp_path)
    assert result.exit_code == 0, result.output
    cert, key = default_paths(tmp_path)
    assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(cert.stat().st_mode) == stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "localhost, 127.0.0.1, ::1, gw.example.com, 10.0.0.5" in result.output
    assert "https://localhost:8443/" in result.output


def test_generate_certs_if_missing_keeps_an_existing_pair(tmp_path):
    run(["generate-certs"], tmp_path)
    cert, _ = default_paths(tmp_path)
    before = cert.read_bytes()
    result = run(["generate-certs", "--if-missing"], tmp_path)
    assert result.exit_code == 0
    assert "Keeping" in result.output
    assert cert.read_bytes() == before
    run(["generate-certs"], tmp_path)
    assert cert.read_bytes() != before


def test_generate_certs_refuses_a_bad_host(tmp_path):
    result = run(["generate-certs", "--host", "not a host"], tmp_path)
    assert result.exit_code == 2
    assert "neither an IP address nor a DNS name" in result.output
    assert not default_paths(tmp_path)[0].exists()


def test_generate_certs_says_when_a_configured_certificate_wins(tmp_path):
    result = run(["generate-certs"], tmp_path, TLS_CERT_FILE="/etc/ssl/real.pem")
    assert "TLS_CERT_FILE is set" in result.output


def test_serve_without_a_certificate_serves_no_admin_site_and_says_why(tmp_path, caplog):
    settings = make_admin_settings(tmp_path)
    with caplog.at_level(logging.INFO, logger="claude_code_api"):
        assert _admin_listener(create_app(settings), settings) is None
    assert "Admin site NOT served: no certificate at" in caplog.text
    assert "claude-code-api generate-certs" in caplog.text


def test_serve_with_the_generated_certificate_serves_https_on_https_port(tmp_path, caplog):
    settings = make_admin_settings(tmp_path, https_port=9443)
    generate_self_signed(default_paths(tmp_path)[0].parent)
    with caplog.at_level(logging.INFO, logger="claude_code_api"):
        server = _admin_listener(create_app(settings), settings)
    assert server is not None
    assert server.config.port == 9443
    assert server.config.ssl_certfile == default_paths(tmp_path)[0]
    assert server.config.proxy_headers is False
    assert "Admin site: https://127.0.0.1:9443/ (self-signed certificate" in caplog.text


def test_serve_refuses_to_start_with_a_configured_certificate_that_is_missing(tmp_path):
    settings = make_admin_settings(
        tmp_path, tls_cert_file=tmp_path / "real.pem", tls_key_file=tmp_path / "real-key.pem"
    )
    with pytest.raises(click.ClickException, match=r"real\.pem does not exist"):
        _admin_listener(create_app(settings), settings)


def test_serve_refuses_to_start_with_a_certificate_whose_key_is_not_its_own(tmp_path):
    generate_self_signed(tmp_path / "one")
    generate_self_signed(tmp_path / "two")
    settings = make_admin_settings(
        tmp_path, tls_cert_file=tmp_path / "one" / "cert.pem", tls_key_file=tmp_path / "two" / "key.pem"
    )
    with pytest.raises(click.ClickException, match="cannot be loaded together"):
        _admin_listener(create_app(settings), settings)


def test_serve_refuses_the_same_port_for_api_and_admin_site(tmp_path):
    generate_self_signed(default_paths(tmp_path)[0].parent)
    settings = make_admin_settings(tmp_path, port=8443, https_port=8443)
    with pytest.raises(click.ClickException, match="HTTPS_PORT and PORT are both 8443"):
        _admin_listener(create_app(settings), settings)


def test_serve_says_when_proxies_are_trusted(tmp_path, caplog):
    settings = make_admin_settings(tmp_path, trust_proxy_headers=True)
    with caplog.at_level(logging.INFO, logger="claude_code_api"):
        _admin_listener(create_app(settings), settings)
    assert "TRUST_PROXY_HEADERS is set" in caplog.text


def test_serve_stops_and_says_so_when_the_https_port_is_taken(tmp_path):
    run(["generate-certs"], tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        https_port = taken.getsockname()[1]
        environment = {
            **os.environ,
            "DATA_DIR": str(tmp_path),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "HTTPS_PORT": str(https_port),
        }
        environment.pop("TLS_CERT_FILE", None)
        environment.pop("TLS_KEY_FILE", None)
        result = subprocess.run(
            [sys.executable, "-m", "claude_code_api", "serve"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert "A listener could not start; see the log above." in result.stderr
    assert "Traceback" not in result.stderr
