"""The admin JSON API for scripts: POST /auth/exchange, GET /admin/keys, DELETE /admin/keys/{id or key}."""

from __future__ import annotations

import pytest

from tests.factories import FAKE_OAUTH_TOKEN, make_oauth_token
from tests.integration.admin_site import (
    ADMIN_AUTH,
    API_KEY,
    HTTPS_ORIGIN,
    SAME_ORIGIN,
    session_csrf,
)

JSON_ROUTES = [
    ("POST", "/auth/exchange"),
    ("GET", "/admin/keys"),
    ("DELETE", "/admin/keys/key_abc"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_json_routes_need_the_admin_password_or_a_session(browser, method, path):
    response = await browser.request(method, path, json={"oauth_token": FAKE_OAUTH_TOKEN})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "ADMIN_PASSWORD" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_a_wrong_admin_password_is_refused(browser, method, path):
    response = await browser.request(method, path, headers={"authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Incorrect admin password in the Authorization header."


async def test_exchange_returns_the_new_key_once(site, browser):
    response = await browser.post(
        "/auth/exchange", json={"oauth_token": FAKE_OAUTH_TOKEN, "name": "script"}, headers=ADMIN_AUTH
    )
    assert response.status_code == 201
    body = response.json()
    assert API_KEY.fullmatch(body["api_key"])
    assert body["name"] == "script"
    assert body["status"] == "active"
    assert body["prefix"] == body["api_key"][:11] + "…"
    assert body["usage"] == {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    assert set(body) == {
        "id",
        "object",
        "name",
        "prefix",
        "status",
        "created_at",
        "last_used_at",
        "revoked_at",
        "expires_at",
        "rpm_limit",
        "concurrency_limit",
        "allowed_models",
        "budget_usd",
        "budget_period",
        "token_health",
        "usage",
        "api_key",
    }
    credentials = await site.gateway.keys.authenticate(body["api_key"])
    assert credentials is not None
    assert credentials.key.id == body["id"]


async def test_exchange_without_a_name_names_the_key_unnamed(browser):
    response = await browser.post(
        "/auth/exchange", json={"oauth_token": FAKE_OAUTH_TOKEN}, headers=ADMIN_AUTH
    )
    assert response.status_code == 201
    assert response.json()["name"] == "unnamed"


async def test_exchange_refuses_a_token_without_the_oauth_prefix(site, browser):
    response = await browser.post(
        "/auth/exchange", json={"oauth_token": "sk-ant-api03-xyz", "name": "script"}, headers=ADMIN_AUTH
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_oauth_token"
    assert error["param"] == "oauth_token"
    assert error["message"].startswith("Invalid OAuth token")
    assert await site.gateway.keys.list_keys() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Missing required parameter: 'oauth_token'."),
        ({"oauth_token": FAKE_OAUTH_TOKEN, "extra": 1}, "Unrecognized request argument supplied: extra"),
        ({"oauth_token": 42}, "Invalid value for 'oauth_token'"),
        ({"oauth_token": FAKE_OAUTH_TOKEN, "name": ""}, "A key's name must have 1 to 100 characters."),
    ],
)
async def test_exchange_names_the_problem_with_a_bad_body(browser, body, message):
    response = await browser.post("/auth/exchange", json=body, headers=ADMIN_AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


async def test_exchange_refuses_an_empty_or_broken_body(browser):
    empty = await browser.post("/auth/exchange", headers=ADMIN_AUTH)
    assert empty.status_code == 400
    broken = await browser.post("/auth/exchange", content=b"{not json", headers=ADMIN_AUTH)
    assert broken.status_code == 400
    assert "could not parse the JSON" in broken.json()["error"]["message"]


async def test_listing_shows_every_key_with_usage_but_never_the_full_key(site, browser):
    _, first = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    second_record, second = await site.gateway.keys.create_key("two", make_oauth_token())
    await site.gateway.keys.revoke_key(second_record.id)
    response = await browser.get("/admin/keys", headers=ADMIN_AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [(key["name"], key["status"]) for key in body["data"]] == [("two", "revoked"), ("one", "active")]
    assert first not in response.text
    assert second not in response.text
    assert FAKE_OAUTH_TOKEN not in response.text
    assert all("api_key" not in key for key in body["data"])


async def test_listing_filters_by_name(site, browser):
    await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    await site.gateway.keys.create_key("notebook", FAKE_OAUTH_TOKEN)
    response = await browser.get("/admin/keys", params={"q": "CI"}, headers=ADMIN_AUTH)
    assert [key["name"] for key in response.json()["data"]] == ["ci-pipeline"]


async def test_delete_revokes_by_key_id(site, browser):
    record, api_key = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    response = await browser.delete(f"/admin/keys/{record.id}", headers=ADMIN_AUTH)
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoked_at"] is not None
    assert await site.gateway.keys.authenticate(api_key) is None


async def test_delete_revokes_by_the_full_key_as_the_seed_named_it(site, browser):
    record, api_key = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    response = await browser.delete(f"/admin/keys/{api_key}", headers=ADMIN_AUTH)
    assert response.status_code == 200
    assert response.json()["id"] == record.id
    assert api_key not in response.text
    assert await site.gateway.keys.authenticate(api_key) is None


async def test_delete_of_an_unknown_key_is_404(browser):
    response = await browser.delete("/admin/keys/key_nope", headers=ADMIN_AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_delete_twice_keeps_the_first_revocation(site, browser):
    record, _ = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    first = (await browser.delete(f"/admin/keys/{record.id}", headers=ADMIN_AUTH)).json()
    second = (await browser.delete(f"/admin/keys/{record.id}", headers=ADMIN_AUTH)).json()
    assert first["revoked_at"] == second["revoked_at"]


async def test_the_bearer_password_needs_no_csrf_token_nor_origin(site, browser):
    record, _ = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    response = await browser.delete(
        f"/admin/keys/{record.id}", headers={**ADMIN_AUTH, "origin": "https://x.example"}
    )
    assert response.status_code == 200


# --- the same routes from a logged-in browser (the dashboard's fetch calls) ----------------------


async def test_a_session_may_list_keys_without_a_csrf_token(admin):
    response = await admin.get("/admin/keys")
    assert response.status_code == 200


async def test_a_session_delete_needs_the_csrf_header(site, admin):
    record, api_key = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    refused = await admin.delete(f"/admin/keys/{record.id}", headers=SAME_ORIGIN)
    assert refused.status_code == 403
    assert "CSRF token" in refused.json()["error"]["message"]
    assert await site.gateway.keys.authenticate(api_key) is not None
    token = await session_csrf(admin)
    accepted = await admin.delete(f"/admin/keys/{record.id}", headers={**SAME_ORIGIN, "x-csrf-token": token})
    assert accepted.status_code == 200
    assert await site.gateway.keys.authenticate(api_key) is None


async def test_a_session_request_from_another_site_is_refused_even_with_the_token(site, admin):
    record, _ = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    token = await session_csrf(admin)
    for headers in (
        {"origin": "https://evil.example", "x-csrf-token": token},
        {"origin": HTTPS_ORIGIN, "sec-fetch-site": "cross-site", "x-csrf-token": token},
        {"x-csrf-token": token},
    ):
        response = await admin.delete(f"/admin/keys/{record.id}", headers=headers)
        assert response.status_code == 403, headers


async def test_a_session_exchange_needs_the_csrf_header(admin):
    body = {"oauth_token": FAKE_OAUTH_TOKEN, "name": "from-fetch"}
    assert (await admin.post("/auth/exchange", json=body, headers=SAME_ORIGIN)).status_code == 403
    token = await session_csrf(admin)
    response = await admin.post("/auth/exchange", json=body, headers={**SAME_ORIGIN, "x-csrf-token": token})
    assert response.status_code == 201
