"""The admin site's access rules: HTTPS only, login, sessions, throttling, CSRF and security headers."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from sqlalchemy import select

from claude_code_api.routes.admin_site import AdminSite as SiteState
from claude_code_api.security.admin_auth import LOGIN_COOKIE, SESSION_COOKIE, MemoryLoginThrottle
from claude_code_api.security.certs import generate_self_signed
from claude_code_api.store.tables import AdminSessionRow
from tests.factories import FAKE_OAUTH_TOKEN, FakeClock
from tests.integration.admin_site import (
    ADMIN_AUTH,
    ADMIN_PASSWORD,
    BROWSER,
    HTTPS_ORIGIN,
    SAME_ORIGIN,
    csrf_field,
    csrf_meta,
    log_in,
    make_admin_settings,
    open_site,
    session_csrf,
)

ADMIN_ROUTES = [
    ("GET", "/"),
    ("POST", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/admin"),
    ("GET", "/admin/keys"),
    ("GET", "/admin/keys/key_abc/revoke"),
    ("POST", "/admin/keys/key_abc/revoke"),
    ("DELETE", "/admin/keys/key_abc"),
    ("POST", "/auth/exchange"),
]


# --- HTTPS only ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_on_the_plain_http_port_answer_403_pointing_to_https(site, method, path):
    async with site.client("http://testserver:8000") as client:
        response = await client.request(method, path, headers=ADMIN_AUTH)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert f"HTTPS only: open https://testserver{path}" in error["message"]


async def test_https_refusal_links_to_the_configured_site_never_to_the_host_header(site):
    async with site.client("http://evil.example:8000") as client:
        response = await client.get("/admin", headers=BROWSER)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="https://testserver/admin"' in response.text
    assert "evil.example" not in response.text
    assert response.headers["x-frame-options"] == "DENY"


async def test_https_refusal_links_to_a_certificate_name_by_default(tmp_path):
    settings = make_admin_settings(tmp_path, admin_public_url="")
    generate_self_signed(tmp_path / "certs", ["gw.example"], 30)
    async with open_site(settings) as default, default.client("http://evil.example:8000") as client:
        response = await client.get("/admin", headers=BROWSER)
    assert 'href="https://gw.example:8443/admin"' in response.text


@pytest.mark.parametrize("host", ["evil.example", "testserver.evil.example", "127.0.0.1"])
async def test_admin_requests_naming_another_host_are_refused(site, host):
    async with site.client(f"https://{host}") as client:
        page = await client.get("/login")
        # A page served under the attacker's name (DNS rebinding) would pass its own Origin check.
        login = await client.post(
            "/login", data={"password": ADMIN_PASSWORD}, headers={"origin": f"https://{host}"}
        )
        api = await client.get("/admin/keys", headers=ADMIN_AUTH)
    for response in (page, login, api):
        assert response.status_code == 403
    assert "answers only as https://testserver" in api.json()["error"]["message"]


async def test_the_csrf_check_takes_the_configured_origin_not_the_host(admin):
    token = await session_csrf(admin)
    response = await admin.delete(
        "/admin/keys/key_abc", headers={"origin": "https://testserver:8443", "x-csrf-token": token}
    )
    assert response.status_code == 403
    assert "is not https://testserver" in response.json()["error"]["message"]


async def test_api_routes_stay_on_the_plain_http_port(site):
    async with site.client("http://testserver:8000") as client:
        assert (await client.get("/v1/health")).status_code == 200
        assert (await client.get("/static/admin.css")).status_code == 200


async def test_forwarded_proto_is_ignored_unless_proxy_headers_are_trusted(site):
    async with site.client("http://testserver:8000") as client:
        response = await client.get("/login", headers={"x-forwarded-proto": "https"})
    assert response.status_code == 403


async def test_a_tls_proxy_is_admitted_when_proxy_headers_are_trusted(tmp_path):
    # Without ADMIN_PUBLIC_URL the trusted proxy's forwarded host is the site's name.
    settings = make_admin_settings(tmp_path, trust_proxy_headers=True, admin_public_url="")
    async with open_site(settings) as trusted, trusted.client("http://gw.example") as client:
        forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "gw.example"}
        page = await client.get("/login", headers=forwarded)
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=")
        # The browser sees https and sends its Secure cookies; this client sees http, so it is told to.
        login_cookie = f"{LOGIN_COOKIE}={page.cookies[LOGIN_COOKIE]}"
        response = await client.post(
            "/login",
            data={"password": ADMIN_PASSWORD, "csrf_token": csrf_field(page.text)},
            headers={**forwarded, "origin": "https://gw.example", "cookie": login_cookie},
        )
        assert response.status_code == 303
        session_cookie = f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"
        proxied = {**forwarded, "origin": "https://gw.example", "cookie": session_cookie}
        exchange = await client.get("/", headers=proxied)
        assert exchange.status_code == 200
        created = await client.post(
            "/",
            data={
                "name": "behind-proxy",
                "oauth_token": FAKE_OAUTH_TOKEN,
                "csrf_token": csrf_meta(exchange.text),
            },
            headers=proxied,
        )
        # Behind the proxy, the examples point at the API through the same proxy and name.
        assert 'base_url="https://gw.example/v1"' in created.text
        plain = await client.get("/login", headers={"x-forwarded-proto": "http"})
        assert plain.status_code == 403


async def test_a_trusted_proxy_forwarding_another_host_is_refused_when_the_url_is_configured(tmp_path):
    settings = make_admin_settings(tmp_path, trust_proxy_headers=True, admin_public_url="https://gw.example")
    async with open_site(settings) as trusted, trusted.client("http://gw.example") as client:
        forwarded = {"x-forwarded-proto": "https"}
        assert (
            await client.get("/login", headers={**forwarded, "x-forwarded-host": "gw.example"})
        ).status_code == 200
        other = await client.get("/login", headers={**forwarded, "x-forwarded-host": "evil.example"})
        assert other.status_code == 403


async def test_throttling_behind_a_trusted_proxy_counts_the_forwarded_client(tmp_path):
    settings = make_admin_settings(tmp_path, trust_proxy_headers=True, admin_public_url="")
    async with open_site(settings) as trusted, trusted.client("http://gw.example") as client:
        for _ in range(5):
            headers = {**ADMIN_AUTH, "authorization": "Bearer wrong", "x-forwarded-proto": "https"}
            await client.get("/admin/keys", headers={**headers, "x-forwarded-for": "203.0.113.7"})
        blocked = await client.get(
            "/admin/keys",
            headers={**ADMIN_AUTH, "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"},
        )
        other = await client.get(
            "/admin/keys",
            headers={**ADMIN_AUTH, "x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.1"},
        )
    assert blocked.status_code == 429
    assert other.status_code == 200


# --- security headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [("/login", 200), ("/", 303), ("/admin/no-such-page", 404), ("/admin/keys", 401)],
)
async def test_every_admin_answer_carries_the_security_headers(browser, path, status):
    response = await browser.get(path, headers=BROWSER)
    assert response.status_code == status
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/login", "/", "/admin", "/admin/no-such-page", "/admin/keys/nope/revoke"])
async def test_pages_hold_no_inline_script_or_style(site, admin, path):
    if path == "/login":
        admin.cookies.clear()
    html = (await admin.get(path, headers=BROWSER)).text
    assert "<html" in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert "<style" not in html
    assert re.search(r"\sstyle=", html) is None
    assert re.search(r"\son[a-z]+=", html) is None


async def test_unknown_admin_path_is_a_page_for_browsers_and_json_for_scripts(browser):
    page = await browser.get("/admin/no-such-page", headers=BROWSER)
    assert page.status_code == 404
    assert "Unknown route: GET /admin/no-such-page" in page.text
    data = await browser.get("/admin/no-such-page")
    assert data.json()["error"]["code"] == "not_found"


async def test_api_errors_keep_the_json_shape_for_browsers_too(browser):
    response = await browser.get("/v1/models", headers=BROWSER)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


# --- login and sessions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "location"),
    [("/", "/login"), ("/admin", "/login?next=%2Fadmin"), ("/admin?q=ci", "/login?next=%2Fadmin%3Fq%3Dci")],
)
async def test_pages_send_a_signed_out_visitor_to_the_login_form(browser, path, location):
    response = await browser.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == location


async def test_login_opens_a_secure_httponly_strict_session(browser):
    response = await log_in(browser)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = next(
        value for value in response.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE)
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "domain" not in attributes
    assert (await browser.get("/admin")).status_code == 200


async def test_sessions_are_stored_as_hashes(site, admin):
    session_id = admin.cookies[SESSION_COOKIE]
    async with site.gateway.database.session() as db:
        stored = list(await db.scalars(select(AdminSessionRow.id_hash)))
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]


async def test_wrong_password_is_refused_without_a_session(browser):
    response = await log_in(browser, "wrong-password")
    assert response.status_code == 401
    assert "Wrong password." in response.text
    assert SESSION_COOKIE not in browser.cookies
    assert (await browser.get("/admin")).status_code == 303


async def test_login_without_its_csrf_token_is_refused(browser):
    await browser.get("/login")
    response = await browser.post("/login", data={"password": ADMIN_PASSWORD}, headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert "expired" in response.text
    assert SESSION_COOKIE not in browser.cookies


async def test_login_with_a_token_of_another_login_form_is_refused(site, browser):
    token = csrf_field((await browser.get("/login")).text)
    async with site.client() as attacker:
        await attacker.get("/login")
        response = await attacker.post(
            "/login", data={"password": ADMIN_PASSWORD, "csrf_token": token}, headers=SAME_ORIGIN
        )
    assert response.status_code == 403


async def test_login_posted_from_another_site_is_refused(browser):
    token = csrf_field((await browser.get("/login")).text)
    response = await browser.post(
        "/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "evil.example" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("next_path", "location"),
    [
        ("/admin?q=x", "/admin?q=x"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/v1/models", "/"),
    ],
)
async def test_login_returns_only_to_a_page_of_the_admin_site(browser, next_path, location):
    token = csrf_field((await browser.get("/login")).text)
    response = await browser.post(
        "/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": token, "next": next_path},
        headers=SAME_ORIGIN,
    )
    assert response.headers["location"] == location


async def test_failed_logins_make_the_address_wait_but_never_lock_the_right_password_out(site):
    clock = FakeClock()
    site.app.state.admin_site = SiteState(site.settings, throttle=MemoryLoginThrottle(clock=clock))
    async with _client_from(site, "203.0.113.7") as attacker, _client_from(site, "198.51.100.1") as admin:
        for _ in range(4):
            assert (await log_in(attacker, "wrong-password")).status_code == 401
        response = await log_in(attacker)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert "Try again in 1 second(s)" in response.json()["error"]["message"]
        page = await attacker.post(
            "/login", data={"password": ADMIN_PASSWORD}, headers={**SAME_ORIGIN, **BROWSER}
        )
        assert page.status_code == 429
        assert "Too many attempts" in page.text
        # The right password still works from another address, and from this one once the wait is over.
        assert (await log_in(admin)).status_code == 303
        clock.advance(1)
        assert (await log_in(attacker)).status_code == 303


async def test_wrong_bearer_passwords_count_towards_the_throttle(browser):
    for _ in range(4):
        response = await browser.get("/admin/keys", headers={"authorization": "Bearer guess"})
        assert response.status_code == 401
    assert (await browser.get("/admin/keys", headers=ADMIN_AUTH)).status_code == 429
    assert (await log_in(browser)).status_code == 429


async def test_successful_login_resets_the_failure_count(browser):
    for _ in range(3):
        await log_in(browser, "wrong-password")
    assert (await log_in(browser)).status_code == 303
    browser.cookies.clear()
    for _ in range(4):
        assert (await log_in(browser, "wrong-password")).status_code == 401


async def test_two_instances_share_the_failures_through_redis(tmp_path, redis_server, redis_prefix):
    shared = {"redis_url": redis_server, "redis_key_prefix": redis_prefix, "secret_key": "s" * 32}
    first_settings = make_admin_settings(tmp_path / "one", **shared)
    second_settings = make_admin_settings(tmp_path / "two", **shared)
    async with open_site(first_settings) as first, open_site(second_settings) as second:
        async with _client_from(first, "203.0.113.7") as one, _client_from(second, "203.0.113.7") as two:
            for client in (one, two, one, two):
                response = await client.get("/admin/keys", headers={"authorization": "Bearer guess"})
                assert response.status_code == 401
            # Four failures across the two instances: the address waits on both.
            assert (await one.get("/admin/keys", headers=ADMIN_AUTH)).status_code == 429
            assert (await two.get("/admin/keys", headers=ADMIN_AUTH)).status_code == 429
        async with _client_from(second, "198.51.100.1") as elsewhere:
            assert (await elsewhere.get("/admin/keys", headers=ADMIN_AUTH)).status_code == 200


def _client_from(site, address: str) -> httpx.AsyncClient:
    """A client of the HTTPS listener whose requests come from `address`."""
    transport = httpx.ASGITransport(site.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=HTTPS_ORIGIN)


async def test_logout_ends_the_session(browser):
    await log_in(browser)
    session_id = browser.cookies[SESSION_COOKIE]
    token = await session_csrf(browser)
    response = await browser.post("/logout", data={"csrf_token": token}, headers=SAME_ORIGIN)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert SESSION_COOKIE not in browser.cookies
    browser.cookies.set(SESSION_COOKIE, session_id)
    assert (await browser.get("/admin")).status_code == 303


async def test_logout_without_csrf_token_is_refused(admin):
    response = await admin.post("/logout", headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert (await admin.get("/admin")).status_code == 200


async def _dashboard_status(settings, session_id: str, clock: FakeClock | None = None) -> int:
    """The status of GET /admin for a browser holding `session_id`, on a freshly started gateway."""
    opening = open_site(settings, clock.now if clock else None)
    async with opening as opened, opened.client(cookies={SESSION_COOKIE: session_id}) as client:
        return (await client.get("/admin")).status_code


async def _session_id(settings, clock: FakeClock | None = None) -> str:
    async with open_site(settings, clock.now if clock else None) as opened, opened.client() as client:
        await log_in(client)
        return client.cookies[SESSION_COOKIE]


async def test_a_restart_with_a_new_password_ends_every_session(tmp_path):
    session_id = await _session_id(make_admin_settings(tmp_path))
    assert (
        await _dashboard_status(make_admin_settings(tmp_path, admin_password="a-new-password"), session_id)
        == 303
    )
    # The session was removed when it was refused: going back to the old password does not revive it.
    assert await _dashboard_status(make_admin_settings(tmp_path), session_id) == 303


async def test_a_restart_with_the_same_password_keeps_sessions(tmp_path):
    session_id = await _session_id(make_admin_settings(tmp_path))
    assert await _dashboard_status(make_admin_settings(tmp_path), session_id) == 200


async def test_an_expired_session_is_refused_by_the_server(tmp_path):
    settings = make_admin_settings(tmp_path, admin_session_hours=1)
    clock = FakeClock()
    session_id = await _session_id(settings, clock)
    clock.advance(hours=1, seconds=-1)
    assert await _dashboard_status(settings, session_id, clock) == 200
    clock.advance(1)
    # The browser would drop the cookie by now (Max-Age); the server must refuse it all the same.
    assert await _dashboard_status(settings, session_id, clock) == 303


async def test_login_form_sets_a_short_lived_strict_cookie_for_its_token(browser):
    response = await browser.get("/login")
    cookie = next(
        value for value in response.headers.get_list("set-cookie") if value.startswith(LOGIN_COOKIE)
    )
    assert "secure" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert "max-age=3600" in cookie.lower()


async def test_signed_in_visit_to_login_goes_to_the_site(admin):
    response = await admin.get("/login?next=/admin")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"


async def test_default_password_warning_shows_only_after_login(tmp_path):
    settings = make_admin_settings(tmp_path, admin_password="changeme")
    async with open_site(settings) as default, default.client() as client:
        login_page = await client.get("/login")
        assert "still the default" not in login_page.text
        await log_in(client, "changeme")
        assert "still the default" in (await client.get("/admin")).text


async def test_static_assets_are_served_by_the_gateway(browser):
    css = await browser.get("/static/admin.css")
    js = await browser.get("/static/admin.js")
    assert css.status_code == js.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "javascript" in js.headers["content-type"]
