"""The admin site's credential pages: list, add per kind, rename, remove, and keys on credentials in ranks."""

from __future__ import annotations

import json

import httpx
import pytest

from claude_code_api.store.credential_kinds import CredentialInput, CredentialSecrets
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.admin_site import API_KEY, SAME_ORIGIN, csrf_meta

CONSOLE_KEY = "sk-ant-api03-" + "q" * 60 + "4321"


async def post(
    client: httpx.AsyncClient, path: str, data: dict[str, str], page: str | None = None
) -> httpx.Response:
    csrf = csrf_meta((await client.get(page or path)).text)
    return await client.post(path, data={**data, "csrf_token": csrf}, headers=SAME_ORIGIN)


async def add_console(site, name: str = "console") -> None:
    await site.gateway.keys.credentials.add_credential(
        CredentialInput(name=name, kind="anthropic-api-key", secrets=CredentialSecrets(api_key=CONSOLE_KEY))
    )


async def test_adding_a_credential_lists_it_without_its_secret(site, admin):
    form = await admin.get("/admin/credentials/new?kind=anthropic-api-key")
    assert form.status_code == 200
    assert 'name="api_key"' in form.text
    assert 'name="oauth_token"' not in form.text

    added = await post(
        admin,
        "/admin/credentials/new",
        {"kind": "anthropic-api-key", "name": "console", "api_key": CONSOLE_KEY},
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/credentials?added=console"
    listing = await admin.get(added.headers["location"])
    assert "console" in listing.text
    assert "…4321" in listing.text
    assert CONSOLE_KEY not in listing.text
    upstream = await site.gateway.keys.credentials.upstream_credential("console")
    assert upstream.secrets.api_key == CONSOLE_KEY


async def test_the_subscription_form_says_who_a_subscription_is_for(admin):
    for page in ("/admin/credentials/new?kind=subscription", "/"):
        text = (await admin.get(page)).text
        assert "A subscription&#39;s OAuth token is for its subscriber&#39;s own use" in text
        assert "Console API keys or a cloud provider" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "openai", "name": "x", "api_key": "k"}, "Unknown credential kind &#39;openai&#39;"),
        ({"kind": "bedrock", "name": "x", "api_key": "k"}, "A bedrock credential needs --region"),
        (
            {"kind": "vertex", "name": "x", "region": "r", "project": "p", "google_credentials": "nope"},
            "is not JSON",
        ),
        (
            {
                "kind": "vertex",
                "name": "x",
                "region": "r",
                "project": "p",
                "google_credentials": json.dumps({"type": "authorized_user"}),
            },
            "is not a Google credential",
        ),
        ({"kind": "anthropic-api-key", "name": "console", "api_key": CONSOLE_KEY}, "exists already"),
    ],
)
async def test_bad_input_shows_the_form_again_with_the_message_and_stores_nothing(site, admin, data, message):
    await add_console(site)
    refused = await post(admin, "/admin/credentials/new", data, page="/admin/credentials/new")
    assert refused.status_code == 400
    assert "Nothing was stored" in refused.text
    assert message in refused.text
    assert 'action="/admin/credentials/new"' in refused.text
    assert [c.name for c in await site.gateway.keys.credentials.list_credentials()] == ["console"]


async def test_a_key_is_created_on_two_ranks_of_credentials(site, admin):
    await add_console(site, "b")
    await site.gateway.keys.credentials.add_credential(
        CredentialInput(
            name="a", kind="subscription", secrets=CredentialSecrets(oauth_token=FAKE_OAUTH_TOKEN)
        )
    )
    page = await admin.get("/")
    assert 'name="rank.a"' in page.text
    created = await post(admin, "/", {"name": "team", "oauth_token": "", "rank.a": "1", "rank.b": "2"})
    assert created.status_code == 200, created.text
    api_key = API_KEY.findall(created.text)[0]
    found = await site.gateway.keys.authenticate(api_key)
    assert found is not None
    assert found.key.credential_ranks == (("a",), ("b",))
    key_page = await admin.get(f"/admin/keys/{found.key.id}")
    assert "data-ranks" in key_page.text


async def test_a_rank_naming_an_unknown_credential_shows_the_form_again(site, admin):
    await add_console(site)
    refused = await post(admin, "/", {"name": "team", "oauth_token": "", "rank.ghost": "1"})
    assert refused.status_code == 400
    assert "No credential named &#39;ghost&#39;" in refused.text
    assert await site.gateway.keys.list_keys() == []
    both = await post(admin, "/", {"name": "team", "oauth_token": FAKE_OAUTH_TOKEN, "rank.console": "1"})
    assert both.status_code == 400
    assert "not both" in both.text
    assert await site.gateway.keys.list_keys() == []


async def test_the_token_exchange_keeps_working(site, admin):
    created = await post(admin, "/", {"name": "laptop", "oauth_token": FAKE_OAUTH_TOKEN})
    assert created.status_code == 200
    found = await site.gateway.keys.authenticate(API_KEY.findall(created.text)[0])
    assert found is not None
    assert found.upstream_ranks[0][0].secret == FAKE_OAUTH_TOKEN


async def test_a_keys_credentials_are_changed_on_its_page(site, admin):
    await add_console(site, "b")
    record, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    own = f"{record.id}-subscription"
    path = f"/admin/keys/{record.id}/credentials"
    saved = await post(admin, path, {f"rank.{own}": "2", "rank.b": "1"})
    assert saved.status_code == 303
    assert (await site.gateway.keys.get_key(record.id)).credential_ranks == (("b",), (own,))
    refused = await post(admin, path, {"rank.b": "9"})
    assert refused.status_code == 400
    assert "A rank is a number from 1 to 5" in refused.text


async def test_rename_and_remove_with_confirmation(site, admin):
    await add_console(site)
    record, _ = await site.gateway.keys.create_key("team", credentials=[["console"]])

    renamed = await post(admin, "/admin/credentials/console/rename", {"new_name": "main"})
    assert renamed.status_code == 303
    taken = await post(admin, "/admin/credentials/main/rename", {"new_name": "bad name"})
    assert taken.status_code == 400
    assert "letters, digits" in taken.text

    confirmation = await admin.get("/admin/credentials/main/remove")
    assert "Remove this credential?" in confirmation.text
    refused = await post(admin, "/admin/credentials/main/remove", {})
    assert refused.status_code == 400
    assert f"used by key(s) {record.id} (team)" in refused.text
    await site.gateway.keys.revoke_key(record.id)
    removed = await post(admin, "/admin/credentials/main/remove", {}, page="/admin/credentials/main/remove")
    assert removed.status_code == 303
    assert await site.gateway.keys.credentials.list_credentials() == []


async def test_credential_forms_refuse_a_post_without_the_csrf_token(site, admin):
    refused = await admin.post(
        "/admin/credentials/new",
        data={"kind": "anthropic-api-key", "name": "c", "api_key": CONSOLE_KEY},
        headers=SAME_ORIGIN,
    )
    assert refused.status_code == 403
    assert await site.gateway.keys.credentials.list_credentials() == []


async def test_credential_pages_need_a_session(browser):
    for path in ("/admin/credentials", "/admin/credentials/new"):
        response = await browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
