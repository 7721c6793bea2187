"""Tests of security/origins.py: the admin site's own origins, from configuration, never from Host."""

from __future__ import annotations

import pytest

from claude_code_api.config import ConfigurationError, load_settings
from claude_code_api.security.origins import (
    SiteOrigins,
    configured_origins,
    default_origins,
    normalize_origin,
    origin_of_host,
)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://GW.example:443/", "https://gw.example"),
        ("https://gw.example:8443", "https://gw.example:8443"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("http://gw.example:80", "http://gw.example"),
        ("https://gw.example:99999", None),
        ("gw.example", None),
    ],
)
def test_origins_are_normalized(url, origin):
    assert normalize_origin(url) == origin


def test_configured_origins_match_exactly_and_the_first_is_for_links():
    site = configured_origins(["https://gw.example", "https://gw.internal:8443"])
    assert site is not None
    assert site.primary == "https://gw.example"
    assert site.allows("https://gw.example:443")
    assert site.allows("https://gw.internal:8443")
    for other in ("https://gw.example:8443", "http://gw.example", "https://evil.example", "null", None):
        assert not site.allows(other)
    assert configured_origins([]) is None


def test_default_origins_are_the_certificate_names_and_the_listener_on_any_port():
    site = default_origins(("localhost", "127.0.0.1", "::1", "gw.example"), "10.0.0.5", 8443)
    assert site.primary == "https://gw.example:8443"
    for allowed in (
        "https://gw.example:8443",
        "https://gw.example:9443",
        "https://[::1]:8443",
        "https://10.0.0.5",
    ):
        assert site.allows(allowed)
    for refused in (
        "https://evil.example:8443",
        "https://gw.example.evil.example:8443",
        "http://gw.example:8443",
    ):
        assert not site.allows(refused)


def test_a_wildcard_certificate_name_matches_one_label():
    site = default_origins(("*.corp.example", "localhost"), "0.0.0.0", 8443)
    assert site.primary == "https://localhost:8443"
    assert site.allows("https://gw.corp.example:8443")
    assert not site.allows("https://corp.example:8443")
    assert not site.allows("https://a.gw.corp.example:8443")


def test_without_a_certificate_or_listener_address_the_loopback_names_remain():
    site = default_origins((), "0.0.0.0", 8443)
    assert site.primary == "https://localhost:8443"
    assert site.allows(origin_of_host("127.0.0.1:8443"))
    assert not site.allows(origin_of_host("gw.example:8443"))


def test_site_origins_name_themselves_for_messages():
    assert str(SiteOrigins(("https://a", "https://b"))) == "https://a or https://b"


@pytest.mark.parametrize(
    "value", ["http://gw.example", "https://gw.example/admin", "https://gw.example:0x1", "gw.example"]
)
def test_admin_public_url_must_be_an_https_origin(value):
    with pytest.raises(ConfigurationError, match="ADMIN_PUBLIC_URL"):
        load_settings(admin_public_url=value)


def test_admin_public_url_takes_several_comma_separated():
    settings = load_settings(admin_public_url="https://a.example, https://b.example:8443")
    assert settings.admin_public_url == ["https://a.example", "https://b.example:8443"]
