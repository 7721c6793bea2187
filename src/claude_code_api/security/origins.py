"""The admin site's own origins: the `https://host[:port]` its browsers use, from ADMIN_PUBLIC_URL or, by
default, the certificate's names and the listener; pure except `admin_origins`, which reads the certificate.

The Host header is the client's to choose, so the CSRF origin check and the link on the plain-HTTP page
take the site's origin from here, never from the request, and admin requests naming another host are
refused (a DNS-rebinding page, a proxy passing any name on).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from claude_code_api.config import Settings
from claude_code_api.security.certs import CertificateError, check_certificate

_WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")  # noqa: S104 - listener addresses, compared, not bound
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def normalize_origin(url: str) -> str | None:
    """`scheme://host[:port]` in lower case, the default port left out, IPv6 in brackets; None if `url`
    has no host or a bad port."""
    parts = urlsplit(url.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not parts.scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + ("" if port in (None, default_port) else f":{port}")


def origin_of_host(host: str) -> str | None:
    """The https origin of a Host header value (`gw.example:8443`)."""
    return normalize_origin(f"https://{host}") if host else None


@dataclass(frozen=True)
class SiteOrigins:
    """The origins the admin site answers as; `origins[0]` is the one links point to. An origin may
    start with `https://*.` for a wildcard certificate name (one label, as TLS matches it). With
    `any_port`, the names match on any port (a container or a port forward may publish HTTPS_PORT
    under another one)."""

    origins: tuple[str, ...]
    any_port: bool = False

    @property
    def primary(self) -> str:
        return self.origins[0]

    def allows(self, origin: str | None) -> bool:
        """Tells whether `origin` (an Origin header, or `https://<Host>`) is one of the site's."""
        normalized = normalize_origin(origin) if origin else None
        if normalized is None:
            return False
        if self.any_port:
            normalized = _without_port(normalized)
            return any(_matches(normalized, _without_port(allowed)) for allowed in self.origins)
        return any(_matches(normalized, allowed) for allowed in self.origins)

    def __str__(self) -> str:
        return " or ".join(self.origins)


def configured_origins(urls: list[str]) -> SiteOrigins | None:
    """ADMIN_PUBLIC_URL's origins, or None when it is unset."""
    origins = tuple(origin for url in urls if (origin := normalize_origin(url)) is not None)
    return SiteOrigins(origins) if origins else None


def default_origins(certificate_names: tuple[str, ...], host: str, https_port: int) -> SiteOrigins:
    """Every certificate name and the listener's address, on any port (links use HTTPS_PORT); for links,
    a plain name first, then a loopback one, wildcards last. Without a certificate: the loopback names."""
    hosts = [*certificate_names]
    if host not in _WILDCARD_ADDRESSES:
        hosts.append(host)
    if not hosts:
        hosts = ["localhost", "127.0.0.1", "::1"]
    origins = []
    for name in hosts:
        origin = _https_origin(name, https_port)
        if origin is not None and origin not in origins:
            origins.append(origin)
    origins.sort(
        key=lambda origin: ("*" in origin, _without_port(origin).removeprefix("https://") in _LOOPBACK_NAMES)
    )
    return SiteOrigins(tuple(origins), any_port=True)


def admin_origins(settings: Settings) -> SiteOrigins:
    """The admin site's origins: ADMIN_PUBLIC_URL, else the certificate's names and the listener."""
    configured = configured_origins(settings.admin_public_url)
    if configured is not None:
        return configured
    cert_file, key_file = settings.resolved_tls_files
    try:
        names = check_certificate(cert_file, key_file).names
    except CertificateError:
        names = ()
    return default_origins(names, settings.host, settings.https_port)


def _https_origin(name: str, port: int) -> str | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return normalize_origin(f"https://{name}:{port}")
    host = f"[{address}]" if address.version == 6 else str(address)
    return normalize_origin(f"https://{host}:{port}")


def _without_port(origin: str) -> str:
    scheme, _, rest = origin.partition("://")
    host = rest if rest.endswith("]") or ":" not in rest.rpartition("]")[2] else rest.rsplit(":", 1)[0]
    return f"{scheme}://{host}"


def _matches(origin: str, allowed: str) -> bool:
    if origin == allowed:
        return True
    prefix = "https://*."
    if not allowed.startswith(prefix):
        return False
    # *.example.com:8443 matches a.example.com:8443, not example.com nor a.b.example.com.
    rest = origin.removeprefix("https://")
    label, dot, remainder = rest.partition(".")
    return (
        bool(label) and dot == "." and origin.startswith("https://") and remainder == allowed[len(prefix) :]
    )
