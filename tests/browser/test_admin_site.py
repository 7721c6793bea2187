"""The admin site in Debian's Chromium, against `claude-code-api serve` over HTTPS, used as an admin would.

Also saves the README's screenshots: docs/images/key-generation.png and docs/images/key-management.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import ADMIN_PASSWORD, DOCS_IMAGES, ServedGateway
from tests.factories import make_oauth_token

pytestmark = pytest.mark.browser

API_KEY = re.compile(r"sk-[A-Za-z0-9_-]{48}")
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(
        ignore_https_errors=True, viewport=DESKTOP, color_scheme="light", locale="en-US"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield context
    finally:
        context.close()


def log_in(page: Page, served: ServedGateway, password: str = ADMIN_PASSWORD) -> None:
    page.goto(f"{served.admin_url}/")
    expect(page).to_have_url(f"{served.admin_url}/login")
    page.get_by_label("Admin password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def create_key_in_page(page: Page, name: str) -> str:
    page.get_by_label("Key name").fill(name)
    page.get_by_label("Claude OAuth token").fill(make_oauth_token())
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_role("heading", name="Your new API key")).to_be_visible()
    return page.get_by_role("textbox", name="New API key").input_value()


def admin_api(served: ServedGateway) -> httpx.Client:
    return httpx.Client(
        base_url=f"https://127.0.0.1:{served.https_port}",
        headers={"authorization": f"Bearer {ADMIN_PASSWORD}"},
        verify=False,
        timeout=10,
    )


def key_status(served: ServedGateway, key_id: str) -> str:
    with admin_api(served) as api:
        keys = api.get("/admin/keys").json()["data"]
    status: str = next(key["status"] for key in keys if key["id"] == key_id)
    return status


def chat(served: ServedGateway, api_key: str, text: str) -> str:
    client = openai.OpenAI(api_key=api_key, base_url=served.api_url, max_retries=0, timeout=60)
    try:
        completion = client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": text}]
        )
    finally:
        client.close()
    return completion.choices[0].message.content or ""


def test_log_in_exchange_copy_use_limit_revoke_and_see_the_key_refused(
    context: BrowserContext, own_server: ServedGateway
):
    served = own_server
    assert f"Admin site: https://127.0.0.1:{served.https_port}/ (self-signed certificate" in served.log()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, served, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{served.admin_url}/")

    page.get_by_label("Claude OAuth token").fill("sk-ant-api03-this-is-an-api-key")
    page.get_by_label("Key name").fill("laptop")
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#token-error")).to_contain_text("Invalid OAuth token")
    expect(page.get_by_label("Key name")).to_have_value("laptop")

    # Keys of other apps make the dashboard look like one in use.
    with admin_api(served) as api:
        for name in ("ci-pipeline", "team-notebook", "old-staging"):
            response = api.post("/auth/exchange", json={"oauth_token": make_oauth_token(), "name": name})
            assert response.status_code == 201
            if name == "ci-pipeline":
                assert chat(served, response.json()["api_key"], "Summarise the build log") != ""
            if name == "old-staging":
                api.delete(f"/admin/keys/{response.json()['id']}")

    api_key = create_key_in_page(page, "laptop")
    assert API_KEY.fullmatch(api_key)
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    expect(page.locator("#python-example")).to_contain_text(f'base_url="http://localhost:{served.port}/v1"')
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=DOCS_IMAGES / "key-generation.png", full_page=True)
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == api_key

    assert chat(served, api_key, "Hello from the browser test") == "Echo: Hello from the browser test"

    page.get_by_role("link", name="Keys", exact=True).click()
    row = page.locator("tr", has_text="laptop")
    # The gateway writes usage, last use and the token's state after the answer, one after the other.
    for _ in range(50):
        if (
            row.locator('td[data-label="Requests"]').inner_text() == "1"
            and row.locator('td[data-label="Last used (UTC)"]').inner_text().strip() != "never"
            and row.locator("[data-token-state]").inner_text() == "OK"
        ):
            break
        page.wait_for_timeout(100)
        page.reload()
    expect(row.locator('td[data-label="Requests"]')).to_have_text("1")
    expect(row.locator('td[data-label="Last used (UTC)"]')).not_to_have_text("never")
    expect(row.locator("[data-token-state]")).to_have_text("OK")
    expect(page.locator("body")).not_to_contain_text(api_key)

    # Limits are set in a plain form: a rate, two models and a monthly budget.
    page.get_by_role("link", name="Limits of team-notebook").click()
    page.get_by_label("Requests per minute").fill("30")
    page.get_by_label("Only the models ticked").check()
    page.get_by_label("sonnet", exact=True).check()
    page.get_by_label("haiku", exact=True).check()
    page.get_by_label("Budget in US dollars").fill("20")
    page.get_by_label("Budget period").select_option("month")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator("#flash")).to_contain_text("Limits saved")
    expect(page.locator(".limits-facts")).to_contain_text("sonnet, haiku")
    page.get_by_role("link", name="All keys").click()
    limits = page.locator("tr", has_text="team-notebook").locator("[data-limits]")
    expect(limits).to_have_text(re.compile(r"30/min\s*sonnet, haiku\s*\$20/month"))
    # Just tall enough for the table, so that the README's picture has no empty band.
    page.set_viewport_size({"width": DESKTOP["width"], "height": 700})
    page.screenshot(path=DOCS_IMAGES / "key-management.png", full_page=True)
    page.set_viewport_size(DESKTOP)

    page.get_by_label("Filter by name").fill("note")
    expect(page.locator("tr", has_text="team-notebook")).to_be_visible()
    expect(row).to_be_hidden()
    page.get_by_label("Filter by name").fill("")

    row.get_by_role("link", name="Revoke").click()
    dialog = page.locator("#revoke-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("laptop")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(dialog).to_be_hidden()
    expect(row.locator("[data-status]")).to_have_text("revoked")
    expect(page.locator("#flash")).to_contain_text("laptop")
    expect(page.locator("[data-active-count]")).to_have_text("2")

    with pytest.raises(openai.AuthenticationError) as refused:
        chat(served, api_key, "Still there?")
    assert refused.value.status_code == 401

    page.reload()
    expect(page.locator("tr", has_text="laptop").locator("[data-status]")).to_have_text("revoked")
    assert key_status(served, row.get_attribute("data-key-id") or "") == "revoked"
    assert errors == []


def test_a_fetch_without_the_csrf_token_is_refused(context: BrowserContext, served: ServedGateway):
    with admin_api(served) as api:
        key_id = api.post("/auth/exchange", json={"oauth_token": make_oauth_token(), "name": "keep"}).json()[
            "id"
        ]
    page = context.new_page()
    log_in(page, served)
    status = page.evaluate(
        "async (id) => (await fetch(`/admin/keys/${id}`, {method: 'DELETE'})).status", key_id
    )
    assert status == 403
    assert key_status(served, key_id) == "active"


def test_a_form_on_another_site_cannot_revoke_a_key(context: BrowserContext, served: ServedGateway):
    with admin_api(served) as api:
        key_id = api.post("/auth/exchange", json={"oauth_token": make_oauth_token(), "name": "keep"}).json()[
            "id"
        ]
    page = context.new_page()
    log_in(page, served)
    expect(page).to_have_url(f"{served.admin_url}/")
    attack = f"""<form method="post" action="{served.admin_url}/admin/keys/{key_id}/revoke">
      <input name="csrf_token" value="guess"><button>Win a prize</button></form>"""
    page.route("https://evil.example/", lambda route: route.fulfill(content_type="text/html", body=attack))
    page.goto("https://evil.example/")
    page.get_by_role("button", name="Win a prize").click()
    page.wait_for_load_state()
    # SameSite=Strict keeps the session cookie home: the gateway sees a visitor who is not signed in.
    assert page.url.startswith(f"{served.admin_url}/login")
    assert key_status(served, key_id) == "active"


def test_logout_ends_the_session(context: BrowserContext, served: ServedGateway):
    page = context.new_page()
    log_in(page, served)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{served.admin_url}/login")
    page.goto(f"{served.admin_url}/admin")
    expect(page).to_have_url(f"{served.admin_url}/login?next=%2Fadmin")


def test_the_site_works_without_javascript(chromium: Browser, served: ServedGateway):
    context = chromium.new_context(ignore_https_errors=True, java_script_enabled=False, viewport=DESKTOP)
    try:
        page = context.new_page()
        log_in(page, served)
        api_key = create_key_in_page(page, "no-script")
        expect(page.get_by_role("button", name="Copy")).to_have_count(0)
        page.get_by_role("link", name="See all keys").click()
        page.locator("tr", has_text="no-script").get_by_role("link", name="Revoke").click()
        expect(page.get_by_role("heading", name="Revoke this key?")).to_be_visible()
        page.get_by_role("button", name="Revoke key").click()
        expect(page.locator("#flash")).to_contain_text("no-script")
        expect(page.locator("tr", has_text="no-script").locator("[data-status]")).to_have_text("revoked")
        with pytest.raises(openai.AuthenticationError):
            chat(served, api_key, "Hello?")
    finally:
        context.close()


def test_pages_fit_a_phone_screen(chromium: Browser, served: ServedGateway, tmp_path):
    with admin_api(served) as api:
        for name in ("ci-pipeline", "a-rather-long-key-name-for-the-team-notebook"):
            key_id = api.post(
                "/auth/exchange", json={"oauth_token": make_oauth_token(), "name": name}
            ).json()["id"]
        api.patch(
            f"/admin/keys/{key_id}", json={"rpm_limit": 30, "allowed_models": ["sonnet", "haiku", "opus"]}
        )
    context = chromium.new_context(
        ignore_https_errors=True, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    try:
        page = context.new_page()
        log_in(page, served)
        for path in ("/", "/admin", f"/admin/keys/{key_id}", f"/admin/keys/{key_id}/limits"):
            page.goto(f"{served.admin_url}{path}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
            page.screenshot(path=tmp_path / f"phone{path.replace('/', '-')}.png", full_page=True)
        page.goto(f"{served.admin_url}/")
        api_key = create_key_in_page(page, "phone")
        assert API_KEY.fullmatch(api_key)
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    finally:
        context.close()


def test_add_credentials_and_make_a_key_on_two_ranks(context: BrowserContext, own_server: ServedGateway):
    # A server of its own: the chat below leaves warm Claude processes, which the shared server's check
    # after each test would count as left over.
    served = own_server
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, served)
    expect(page).to_have_url(f"{served.admin_url}/")

    page.get_by_role("link", name="Credentials", exact=True).click()
    page.get_by_role("link", name="Add credential").click()
    expect(page.get_by_text("for its subscriber's own use")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("browser-sub")
    page.get_by_label("OAuth token").fill(make_oauth_token())
    page.get_by_role("button", name="Add credential").click()
    expect(page.get_by_role("status")).to_contain_text("Credential browser-sub added")

    page.get_by_role("link", name="Add credential").click()
    page.get_by_role("link", name="Claude Console API key").click()
    page.get_by_label("Name", exact=True).fill("browser-console")
    page.get_by_label("Console API key").fill("not-a-console-key")
    page.get_by_role("button", name="Add credential").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was stored")
    page.get_by_label("Console API key").fill("sk-ant-api03-" + "b" * 40 + "4444")
    page.get_by_role("button", name="Add credential").click()
    row = page.locator("tr", has_text="browser-console")
    expect(row).to_contain_text("…4444")
    expect(page.locator("body")).not_to_contain_text("bbbbbbbb")

    page.get_by_role("link", name="New key").click()
    page.get_by_label("Key name").fill("two-ranks")
    page.locator("summary", has_text="Credentials").click()
    page.locator('select[name="rank.browser-sub"]').select_option("1")
    page.locator('select[name="rank.browser-console"]').select_option("2")
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_role("heading", name="Your new API key")).to_be_visible()
    api_key = page.get_by_role("textbox", name="New API key").input_value()

    # Rank 1 is the subscription, which answers as every key's token did.
    assert chat(served, api_key, "Hello on two ranks") == "Echo: Hello on two ranks"
    page.get_by_role("link", name="Keys", exact=True).click()
    page.locator("tr", has_text="two-ranks").get_by_role("link", name="two-ranks", exact=True).click()
    ranks = page.locator("[data-ranks] li")
    expect(ranks).to_have_count(2)
    expect(ranks.nth(0)).to_have_text("browser-sub")
    expect(ranks.nth(1)).to_have_text("browser-console")

    # The credentials page names the key on each credential, and counts the answer where it ran.
    page.get_by_role("link", name="Credentials", exact=True).click()
    sub_row = page.locator("tr[data-credential='browser-sub']")
    expect(sub_row).to_contain_text("two-ranks")
    expect(sub_row.locator("td.num").nth(2)).to_have_text("1")
    expect(page.locator("tr[data-credential='browser-console']")).to_contain_text("two-ranks")
    expect(page.locator("body")).to_contain_text("this instance's view")
    assert errors == []
