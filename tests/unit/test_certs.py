"""The self-signed certificate of `generate-certs` and the checks `serve` makes on a certificate."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from claude_code_api.security.certs import (
    CertificateError,
    check_certificate,
    default_paths,
    generate_self_signed,
)


def _names(cert_path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


def test_certificate_is_for_localhost_and_the_loopback_addresses(tmp_path):
    cert, _ = default_paths(tmp_path)
    info = generate_self_signed(cert.parent)
    assert _names(cert) == {"localhost", "127.0.0.1", "::1"}
    assert info.self_signed
    assert info.names == ("localhost", "127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("gateway.example.com", x509.DNSName("gateway.example.com")),
        ("GW.Example.COM", x509.DNSName("gw.example.com")),
        ("*.internal.example", x509.DNSName("*.internal.example")),
        ("10.1.2.3", x509.IPAddress(ipaddress.ip_address("10.1.2.3"))),
        ("fd00::5", x509.IPAddress(ipaddress.ip_address("fd00::5"))),
    ],
)
def test_extra_hosts_become_dns_names_or_ip_addresses(tmp_path, host, expected):
    cert, _ = default_paths(tmp_path)
    generate_self_signed(cert.parent, [host])
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert expected in list(names)


@pytest.mark.parametrize(
    "host", ["bad host", "exa_mple.com", "-leading.example", "http://x.example", "é.example"]
)
def test_a_host_that_is_no_name_nor_address_is_refused(tmp_path, host):
    with pytest.raises(ValueError, match="neither an IP address nor a DNS name"):
        generate_self_signed(tmp_path / "certs", [host])


def test_certificate_and_key_are_readable_by_their_owner_only(tmp_path):
    directory = tmp_path / "certs"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    generate_self_signed(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("cert.pem", "key.pem"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert sorted(path.name for path in directory.iterdir()) == ["cert.pem", "key.pem"]


def test_certificate_is_a_server_certificate_valid_from_now_for_the_given_days(tmp_path):
    cert, _ = default_paths(tmp_path)
    generate_self_signed(cert.parent, valid_days=30)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    now = datetime.now(UTC)
    assert certificate.not_valid_before_utc < now
    assert now + timedelta(days=29) < certificate.not_valid_after_utc <= now + timedelta(days=30)
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_generated_pair_loads_into_a_tls_server_context(tmp_path):
    cert, key = default_paths(tmp_path)
    generate_self_signed(cert.parent)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    info = check_certificate(cert, key)
    assert not info.expired_at(datetime.now(UTC))
    assert info.expired_at(datetime.now(UTC) + timedelta(days=400))


def test_generating_again_replaces_the_pair(tmp_path):
    cert, key = default_paths(tmp_path)
    generate_self_signed(cert.parent)
    first = cert.read_bytes(), key.read_bytes()
    generate_self_signed(cert.parent, ["other.example"])
    assert (cert.read_bytes(), key.read_bytes()) != first
    assert "other.example" in _names(cert)
    check_certificate(cert, key)


def test_a_missing_file_is_named(tmp_path):
    cert, key = default_paths(tmp_path)
    with pytest.raises(CertificateError, match=r"cert\.pem does not exist"):
        check_certificate(cert, key)


def test_a_key_of_another_certificate_is_refused(tmp_path):
    generate_self_signed(tmp_path / "one")
    generate_self_signed(tmp_path / "two")
    with pytest.raises(CertificateError, match="cannot be loaded together"):
        check_certificate(tmp_path / "one" / "cert.pem", tmp_path / "two" / "key.pem")


def test_a_file_that_is_no_certificate_is_refused(tmp_path):
    generate_self_signed(tmp_path)
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(CertificateError):
        check_certificate(tmp_path / "cert.pem", tmp_path / "key.pem")


def test_valid_days_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="valid_days"):
        generate_self_signed(tmp_path, valid_days=0)
