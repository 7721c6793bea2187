"""CSRF tokens and the origin check of the admin site's state-changing requests."""

from __future__ import annotations

import pytest

from claude_code_api.security.csrf import csrf_token, csrf_token_matches, origin_problem
from claude_code_api.security.origins import SiteOrigins

KEY = b"k" * 32
SITE = SiteOrigins(("https://gw.example:8443",))


def test_token_depends_on_key_purpose_and_session():
    token = csrf_token(KEY, "session", "abc")
    assert token == csrf_token(KEY, "session", "abc")
    assert token != csrf_token(KEY, "session", "abd")
    assert token != csrf_token(KEY, "login", "abc")
    assert token != csrf_token(b"o" * 32, "session", "abc")


@pytest.mark.parametrize(
    ("given", "matches"),
    [
        (csrf_token(KEY, "session", "abc"), True),
        (csrf_token(KEY, "session", "abc").upper(), False),
        ("", False),
        (None, False),
        ("é", False),
    ],
)
def test_token_comparison(given, matches):
    assert csrf_token_matches(csrf_token(KEY, "session", "abc"), given) is matches


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://gw.example:8443"},
        {"origin": "HTTPS://GW.EXAMPLE:8443"},
        {"origin": "https://gw.example:8443", "sec-fetch-site": "same-origin"},
        {"referer": "https://gw.example:8443/admin?q=x"},
        {"sec-fetch-site": "none", "referer": "https://gw.example:8443/"},
    ],
)
def test_requests_from_the_site_itself_pass(headers):
    assert origin_problem(headers, SITE) is None


def test_default_port_is_the_same_origin():
    assert origin_problem({"origin": "https://gw.example"}, SiteOrigins(("https://gw.example",))) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"origin": "https://evil.example"}, "Origin https://evil.example is not"),
        ({"origin": "http://gw.example:8443"}, "is not"),
        ({"origin": "https://gw.example:9443"}, "is not"),
        ({"origin": "null"}, "opaque"),
        ({"referer": "https://evil.example/page"}, "Referer is not"),
        ({}, "neither an Origin nor a Referer"),
        ({"origin": "https://gw.example:8443", "sec-fetch-site": "cross-site"}, "another site"),
        ({"origin": "https://gw.example:8443", "sec-fetch-site": "same-site"}, "another site"),
    ],
)
def test_requests_from_elsewhere_are_refused_with_a_reason(headers, reason):
    problem = origin_problem(headers, SITE)
    assert problem is not None
    assert reason in problem
