"""The admin pages: token exchange, key dashboard, revoke; escaping, and the full key shown only once."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import httpx
import pytest

from claude_code_api.store.usage import UsageRecord
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.admin_site import (
    API_KEY,
    BROWSER,
    SAME_ORIGIN,
    csrf_meta,
    log_in,
    session_csrf,
)

XSS_NAME = "<script>alert(1)</script>"
ESCAPED_XSS_NAME = html.escape(XSS_NAME)


async def exchange(
    client: httpx.AsyncClient,
    name: str = "laptop",
    token: str = FAKE_OAUTH_TOKEN,
    csrf: str | None = None,
    headers: dict[str, str] = SAME_ORIGIN,
) -> httpx.Response:
    if csrf is None:
        csrf = csrf_meta((await client.get("/")).text)
    return await client.post(
        "/", data={"name": name, "oauth_token": token, "csrf_token": csrf}, headers=headers
    )


def _usage(key_id: str, input_tokens: int, output_tokens: int) -> UsageRecord:
    return UsageRecord(
        key_id=key_id,
        created_at=datetime.now(UTC),
        model="claude-sonnet-4-5",
        status=200,
        endpoint="chat.completions",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


# --- the exchange page ---------------------------------------------------------------------------


async def test_exchange_page_asks_for_a_name_and_a_token_and_says_how_to_get_one(admin):
    page = await admin.get("/")
    assert page.status_code == 200
    assert 'name="name"' in page.text
    assert 'name="oauth_token"' in page.text
    assert "claude setup-token" in page.text
    assert 'href="https://docs.anthropic.com/' in page.text


async def test_exchange_shows_the_new_key_once_with_a_copy_button_and_examples(site, admin):
    response = await exchange(admin, name="laptop")
    assert response.status_code == 200
    keys = set(API_KEY.findall(response.text))
    assert len(keys) == 1
    api_key = keys.pop()
    assert 'data-copy="new-key"' in response.text
    assert "from openai import OpenAI" in response.text
    assert f'api_key="{api_key}"' in response.text
    assert 'base_url="http://testserver:8000/v1"' in response.text
    assert "curl http://testserver:8000/v1/chat/completions" in response.text
    assert f"Authorization: Bearer {api_key}" in response.text
    credentials = await site.gateway.keys.authenticate(api_key)
    assert credentials is not None
    assert credentials.key.name == "laptop"
    assert credentials.upstream_ranks[0][0].secret == FAKE_OAUTH_TOKEN
    assert FAKE_OAUTH_TOKEN not in response.text


async def test_the_full_key_never_appears_again_in_any_page_or_listing(site, admin):
    created = await exchange(admin, name="laptop")
    api_key = API_KEY.findall(created.text)[0]
    [record] = await site.gateway.keys.list_keys()
    assert api_key not in (await admin.get("/")).text
    pages = [
        await admin.get("/admin"),
        await admin.get("/admin?q=lap"),
        await admin.get(f"/admin/keys/{record.id}/revoke"),
        await admin.get("/admin/keys"),
        await admin.get("/admin/keys", headers={"authorization": f"Bearer {site.settings.admin_password}"}),
    ]
    for page in pages:
        assert page.status_code == 200
        assert api_key not in page.text
        assert api_key[3:20] not in page.text
        assert record.prefix in page.text
        assert FAKE_OAUTH_TOKEN not in page.text


async def test_token_without_the_oauth_prefix_gets_an_inline_error_and_no_key(site, admin):
    response = await exchange(admin, name="laptop", token="sk-ant-api03-not-an-oauth-token")
    assert response.status_code == 400
    assert '<p id="token-error" class="field-error" role="alert">Invalid OAuth token' in response.text
    assert 'value="laptop"' in response.text
    assert "sk-ant-api03-not-an-oauth-token" not in response.text
    assert API_KEY.search(response.text) is None
    assert await site.gateway.keys.list_keys() == []


async def test_empty_name_gets_an_inline_error(site, admin):
    response = await exchange(admin, name="   ")
    assert response.status_code == 400
    assert 'id="name-error"' in response.text
    assert await site.gateway.keys.list_keys() == []


async def test_exchange_form_without_csrf_token_is_refused(site, admin):
    response = await exchange(admin, csrf="", headers={**SAME_ORIGIN, **BROWSER})
    assert response.status_code == 403
    assert "CSRF token" in response.text
    assert await site.gateway.keys.list_keys() == []


async def test_exchange_form_posted_from_another_site_is_refused(site, admin):
    token = await session_csrf(admin)
    response = await exchange(admin, csrf=token, headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    assert await site.gateway.keys.list_keys() == []


async def test_exchange_form_with_the_token_of_another_session_is_refused(site, admin):
    async with site.client() as other:
        await log_in(other)
        foreign_token = await session_csrf(other)
    response = await exchange(admin, csrf=foreign_token)
    assert response.status_code == 403


async def test_exchange_form_needs_a_session(site, browser):
    response = await browser.post(
        "/", data={"name": "x", "oauth_token": FAKE_OAUTH_TOKEN}, headers=SAME_ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert await site.gateway.keys.list_keys() == []


# --- the dashboard -------------------------------------------------------------------------------


async def test_dashboard_lists_every_key_with_usage_and_status(site, admin):
    used, _ = await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    unused, _ = await site.gateway.keys.create_key("notebook", FAKE_OAUTH_TOKEN)
    gone, _ = await site.gateway.keys.create_key("old-laptop", FAKE_OAUTH_TOKEN)
    await site.gateway.keys.revoke_key(gone.id)
    await site.gateway.usage.record(_usage(used.id, 1200, 300))
    await site.gateway.usage.record(_usage(used.id, 800, 700))
    await site.gateway.keys.mark_used(used.id, datetime.now(UTC))

    page = (await admin.get("/admin")).text
    rows = {key.id: page[page.index(f'data-key-id="{key.id}"') :] for key in (used, unused, gone)}
    used_row = rows[used.id][: rows[used.id].index("</tr>")]
    assert "ci-pipeline" in used_row
    assert used.prefix in used_row
    assert used.created_at.strftime("%Y-%m-%d") in used_row
    assert '<td data-label="Requests" class="num">2</td>' in used_row
    assert ">3,000</td>" in used_row
    assert "badge-active" in used_row
    unused_row = rows[unused.id][: rows[unused.id].index("</tr>")]
    assert "never" in unused_row
    assert '<td data-label="Requests" class="num">0</td>' in unused_row
    gone_row = rows[gone.id][: rows[gone.id].index("</tr>")]
    assert "badge-revoked" in gone_row
    assert "data-revoke=" not in gone_row
    assert '<span class="stat-value">3</span><span class="stat-label">keys</span>' in page
    assert '<span class="stat-value" data-active-count>2</span><span class="stat-label">active</span>' in page


async def test_dashboard_filters_by_name(site, admin):
    await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    await site.gateway.keys.create_key("Team Notebook", FAKE_OAUTH_TOKEN)
    page = (await admin.get("/admin?q=notebook")).text
    assert "Team Notebook" in page
    assert "ci-pipeline" not in page
    assert 'value="notebook"' in page
    nothing = (await admin.get("/admin?q=zzz")).text
    assert 'class="no-match" hidden' not in nothing
    assert "No key name contains" in nothing


async def test_dashboard_without_keys_invites_to_create_one(admin):
    page = (await admin.get("/admin")).text
    assert "No keys yet." in page


@pytest.mark.parametrize("where", ["dashboard", "filter", "revoke page", "exchange result", "revoked flash"])
async def test_a_key_named_like_a_script_is_escaped(site, admin, where):
    if where == "exchange result":
        page = (await exchange(admin, name=XSS_NAME)).text
    else:
        record, _ = await site.gateway.keys.create_key(XSS_NAME, FAKE_OAUTH_TOKEN)
        path = {
            "dashboard": "/admin",
            "filter": f"/admin?q={XSS_NAME}",
            "revoke page": f"/admin/keys/{record.id}/revoke",
            "revoked flash": f"/admin?revoked={record.id}",
        }[where]
        if where == "revoked flash":
            await site.gateway.keys.revoke_key(record.id)
        page = (await admin.get(path)).text
    assert XSS_NAME not in page
    assert "alert(1)" in page
    assert ESCAPED_XSS_NAME in page


async def test_a_filter_query_is_escaped(admin):
    page = (await admin.get('/admin?q="><img src=x onerror=alert(1)>')).text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


# --- revoking from the pages ---------------------------------------------------------------------


async def test_revoke_asks_for_confirmation_then_revokes(site, admin):
    record, api_key = await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    dashboard = (await admin.get("/admin")).text
    assert f'href="/admin/keys/{record.id}/revoke"' in dashboard
    confirm = await admin.get(f"/admin/keys/{record.id}/revoke")
    assert confirm.status_code == 200
    assert "Revoke this key?" in confirm.text
    assert await site.gateway.keys.authenticate(api_key) is not None

    response = await admin.post(
        f"/admin/keys/{record.id}/revoke", data={"csrf_token": csrf_meta(confirm.text)}, headers=SAME_ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin?revoked={record.id}"
    assert await site.gateway.keys.authenticate(api_key) is None
    flash = (await admin.get(response.headers["location"])).text
    assert "revoked: requests with it are refused from now on" in flash


async def test_revoked_key_is_refused_by_the_api_at_once(site, admin):
    record, api_key = await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    async with site.client("http://testserver:8000") as api:
        assert (
            await api.get("/v1/models", headers={"authorization": f"Bearer {api_key}"})
        ).status_code == 200
        token = await session_csrf(admin)
        await admin.post(f"/admin/keys/{record.id}/revoke", data={"csrf_token": token}, headers=SAME_ORIGIN)
        response = await api.get("/v1/models", headers={"authorization": f"Bearer {api_key}"})
    assert response.status_code == 401


async def test_revoke_form_without_csrf_token_is_refused(site, admin):
    record, api_key = await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    response = await admin.post(f"/admin/keys/{record.id}/revoke", headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert await site.gateway.keys.authenticate(api_key) is not None


async def test_revoke_page_of_a_revoked_key_says_so(site, admin):
    record, _ = await site.gateway.keys.create_key("ci-pipeline", FAKE_OAUTH_TOKEN)
    await site.gateway.keys.revoke_key(record.id)
    page = (await admin.get(f"/admin/keys/{record.id}/revoke")).text
    assert "already revoked" in page
    assert "<form" not in page.split("<main", 1)[1]


async def test_revoke_page_of_an_unknown_key_is_404(admin):
    response = await admin.get("/admin/keys/key_unknown/revoke", headers=BROWSER)
    assert response.status_code == 404
    assert "No key with id key_unknown." in response.text
