"""The self-signed certificate that `generate-certs` writes, and the checks `serve` makes on a certificate.

The admin site is served over HTTPS even on a laptop: the administrator's password, the OAuth tokens pasted
into it and the API keys it shows must never cross a network in clear text. A self-signed certificate is
enough for that when the browser's warning is accepted once; a real one goes in TLS_CERT_FILE/TLS_KEY_FILE.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTS_DIR_NAME = "certs"
CERT_FILE_NAME = "cert.pem"
KEY_FILE_NAME = "key.pem"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_VALID_DAYS = 365

# Letters, digits and hyphens in dot-separated labels, optionally behind one leading wildcard label.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"(\*\.)?({_LABEL}\.)*{_LABEL}")

# Browsers accept a certificate issued a little in the future of their own clock poorly; backdating by an
# hour absorbs ordinary clock skew between the server and its visitors.
_BACKDATE = timedelta(hours=1)


class CertificateError(Exception):
    """Raised when a certificate or key cannot be used; the message says what to do."""


@dataclass(frozen=True)
class CertificateInfo:
    """What `serve` reports about the certificate it serves the admin site with."""

    subject: str
    names: tuple[str, ...]
    not_valid_after: datetime
    self_signed: bool

    def expired_at(self, when: datetime) -> bool:
        """Tells whether the certificate is no longer valid at `when`."""
        return when >= self.not_valid_after


def certs_dir(data_dir: Path) -> Path:
    """Returns the directory `generate-certs` writes to: DATA_DIR/certs."""
    return data_dir / CERTS_DIR_NAME


def default_paths(data_dir: Path) -> tuple[Path, Path]:
    """Returns where `generate-certs` writes the certificate and its key: DATA_DIR/certs/{cert,key}.pem."""
    directory = certs_dir(data_dir)
    return directory / CERT_FILE_NAME, directory / KEY_FILE_NAME


def generate_self_signed(
    directory: Path,
    hosts: Iterable[str] = (),
    valid_days: int = DEFAULT_VALID_DAYS,
) -> CertificateInfo:
    """Writes a new self-signed cert.pem and key.pem into `directory`, readable by their owner only.

    The certificate names localhost, 127.0.0.1 and ::1 and every extra host (a DNS name or an IP
    address); a pair already there is replaced. The directory is created, or narrowed, to mode 0700.
    """
    if valid_days < 1:
        raise ValueError("valid_days must be at least 1")
    names = _unique([*DEFAULT_HOSTS, *(host.strip() for host in hosts if host.strip())])
    # P-256 keys are small and fast to handshake with, and every current browser accepts them.
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "claude-code-api (self-signed)"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # DATA_DIR too, when this creates it: it is to hold the key store and the secret.
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    # mkdir leaves an existing directory's mode alone; the key must not sit in a listable folder.
    directory.chmod(0o700)
    _write_private(directory / KEY_FILE_NAME, key_pem)
    _write_private(directory / CERT_FILE_NAME, certificate.public_bytes(serialization.Encoding.PEM))
    return _describe(certificate)


def check_certificate(cert_path: Path, key_path: Path) -> CertificateInfo:
    """Loads the pair as the HTTPS listener will and describes the certificate.

    Raises CertificateError naming the file and the problem when either file is missing or unreadable,
    or when the key does not belong to the certificate.
    """
    for path in (cert_path, key_path):
        if not path.is_file():
            raise CertificateError(f"{path} does not exist")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(
            f"{cert_path} and {key_path} cannot be loaded together ({exc}); "
            "is the key the certificate's, unencrypted, in PEM?"
        ) from None
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise CertificateError(f"{cert_path} is not a PEM certificate ({exc})") from None
    return _describe(certificate)


def _describe(certificate: x509.Certificate) -> CertificateInfo:
    try:
        alternative_names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(str(name.value) for name in alternative_names.value)
    except x509.ExtensionNotFound:
        names = ()
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        names=names,
        not_valid_after=certificate.not_valid_after_utc,
        self_signed=certificate.issuer == certificate.subject,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _DNS_NAME.fullmatch(host) is None:
        raise ValueError(f"{host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host.lower())


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _write_private(path: Path, content: bytes) -> None:
    """Writes `content` to `path` with mode 0600, replacing any file there whole."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    # O_EXCL with mode 0600: the key is never readable by others, not even between open and chmod.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        # A reader (a starting server) sees the old file or the new one, never half of one.
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
