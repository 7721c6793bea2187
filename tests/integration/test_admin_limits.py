"""A key's limits, usage chart and token health on the admin site: the key page, the limits form (and the
limits of the exchange form), `PATCH /admin/keys/{id}`, and what the dashboard shows of them."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from claude_code_api.store.keys import ApiKey
from claude_code_api.store.usage import UsageRecord
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration import admin_site
from tests.integration.admin_site import (
    ADMIN_AUTH,
    API_KEY,
    BROWSER,
    SAME_ORIGIN,
    csrf_meta,
    session_csrf,
)

XSS = "<script>alert(1)</script>"
REJECTED = (
    "rejected: Claude rejected this key's OAuth token (401). Tokens copied from ~/.claude/.credentials.json "
    "expire within hours; `claude setup-token` issues a long-lived one."
)
AT_USAGE_LIMIT = (
    "usage limit: The Claude subscription behind this key has reached its usage limit; it resets at "
    "2026-11-25T18:00:00+00:00."
)
# Every field of the limits form, as a browser posts it with nothing filled in.
EMPTY_FORM = {
    "rpm_limit": "",
    "concurrency_limit": "",
    "models": "any",
    "expires_at": "",
    "budget_usd": "",
    "budget_period": "",
}


def usage(key_id: str, when: datetime, input_tokens: int = 100, output_tokens: int = 20) -> UsageRecord:
    return UsageRecord(
        key_id=key_id,
        created_at=when,
        model="claude-sonnet-4-5",
        status=200,
        endpoint="chat.completions",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=0.25,
    )


async def post_limits(
    client: httpx.AsyncClient, key: ApiKey, fields: Mapping[str, object], csrf: str | None = None
) -> httpx.Response:
    if csrf is None:
        csrf = csrf_meta((await client.get(f"/admin/keys/{key.id}/limits")).text)
    return await client.post(
        f"/admin/keys/{key.id}/limits", data={**fields, "csrf_token": csrf}, headers=SAME_ORIGIN
    )


async def stored(site: admin_site.AdminSite, key: ApiKey) -> ApiKey:
    record = await site.gateway.keys.get_key(key.id)
    assert record is not None
    return record


def bars(page: str, chart: str) -> list[int]:
    """The numbers of one chart's bars, from their data attributes, oldest first."""
    svg = re.search(rf'<svg[^>]*data-chart="{chart}".*?</svg>', page, flags=re.DOTALL)
    assert svg, f"no {chart} chart on the page"
    attribute = "data-requests" if chart == "requests" else "data-tokens"
    return [int(value) for value in re.findall(rf'{attribute}="(\d+)"', svg.group(0))]


def row_of(page: str, key: ApiKey) -> str:
    row = page[page.index(f'data-key-id="{key.id}"') :]
    return row[: row.index("</tr>")]


# --- the key page ---------------------------------------------------------------------------------


async def test_key_page_shows_the_key_its_limits_and_its_usage(site, admin):
    key, api_key = await site.gateway.keys.create_key(
        "ci-pipeline", FAKE_OAUTH_TOKEN, rpm_limit=30, budget_usd=20, budget_period="month"
    )
    await site.gateway.usage.record(usage(key.id, datetime.now(UTC)))
    page = await admin.get(f"/admin/keys/{key.id}")
    assert page.status_code == 200
    assert '<h1 class="key-name">ci-pipeline</h1>' in page.text
    assert key.prefix in page.text
    assert "<dt>Requests per minute</dt>\n      <dd>30</dd>" in page.text
    assert "$20 per month" in page.text
    assert "$0.25 spent this month" in page.text
    assert f'href="/admin/keys/{key.id}/limits"' in page.text
    assert api_key not in page.text
    assert FAKE_OAUTH_TOKEN not in page.text


async def test_pages_of_a_key_need_a_session_and_an_existing_key(site, browser, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    async with site.client() as stranger:
        for path in (f"/admin/keys/{key.id}", f"/admin/keys/{key.id}/limits"):
            response = await stranger.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=")
    for path in ("/admin/keys/key_nope", "/admin/keys/key_nope/limits"):
        assert (await admin.get(path, headers=BROWSER)).status_code == 404


@pytest.mark.parametrize("page", ["key", "limits"])
async def test_pages_of_a_key_hold_no_inline_script_or_style(site, admin, page):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    path = f"/admin/keys/{key.id}" + ("/limits" if page == "limits" else "")
    text = (await admin.get(path)).text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) is None
    assert "<style" not in text
    assert re.search(r"\sstyle=", text) is None
    assert re.search(r"\son[a-z]+=", text) is None


# --- the limits form ------------------------------------------------------------------------------


async def test_limits_form_shows_the_current_limits(site, admin):
    key, _ = await site.gateway.keys.create_key(
        "laptop",
        FAKE_OAUTH_TOKEN,
        rpm_limit=30,
        concurrency_limit=2,
        allowed_models=["sonnet", "claude-sonnet-4-5-20250929"],
        expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        budget_usd=12.5,
        budget_period="week",
    )
    page = (await admin.get(f"/admin/keys/{key.id}/limits")).text
    assert 'name="rpm_limit" type="text" inputmode="numeric" value="30"' in page
    assert 'value="2"' in page
    assert re.search(r'value="only"\s+checked', page)
    assert re.search(r'value="sonnet"\s+checked', page)
    assert not re.search(r'value="haiku"\s+checked', page)
    # A model the catalog does not list, set with the CLI, is offered too, so that saving keeps it.
    assert re.search(r'value="claude-sonnet-4-5-20250929"\s+checked', page)
    assert 'value="2030-01-02 03:04"' in page
    assert 'value="12.50"' in page
    assert '<option value="week" selected>' in page


async def test_limits_form_sets_every_limit_and_goes_back_to_the_key_page(site, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    response = await post_limits(
        admin,
        key,
        {
            "rpm_limit": "60",
            "concurrency_limit": "3",
            "models": "only",
            "allowed_models": ["sonnet", "haiku"],
            "expires_at": "2031-06-30 12:00",
            "budget_usd": "$25.50",
            "budget_period": "day",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/keys/{key.id}?saved=limits"
    record = await stored(site, key)
    assert record.rpm_limit == 60
    assert record.concurrency_limit == 3
    assert record.allowed_models == ("sonnet", "haiku")
    assert record.expires_at == datetime(2031, 6, 30, 12, 0, tzinfo=UTC)
    assert record.budget_usd == 25.5
    assert record.budget_period == "day"
    page = (await admin.get(response.headers["location"])).text
    assert "Limits saved" in page


async def test_an_expiry_may_be_a_duration_from_now(site, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    before = datetime.now(UTC)
    assert (await post_limits(admin, key, {**EMPTY_FORM, "expires_at": "30d"})).status_code == 303
    expires_at = (await stored(site, key)).expires_at
    assert expires_at is not None
    assert timedelta(days=30) <= expires_at - before < timedelta(days=30, minutes=1)


async def test_an_emptied_field_lifts_its_limit(site, admin):
    key, _ = await site.gateway.keys.create_key(
        "laptop",
        FAKE_OAUTH_TOKEN,
        rpm_limit=30,
        concurrency_limit=2,
        allowed_models=["sonnet"],
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        budget_usd=5,
        budget_period="month",
    )
    assert (await post_limits(admin, key, EMPTY_FORM)).status_code == 303
    record = await stored(site, key)
    assert (
        record.rpm_limit,
        record.concurrency_limit,
        record.allowed_models,
        record.expires_at,
        record.budget_usd,
        record.budget_period,
    ) == (None, None, None, None, None, None)
    assert '<span class="muted">no limit</span>' in (await admin.get(f"/admin/keys/{key.id}")).text


async def test_a_field_the_form_does_not_send_keeps_its_limit(site, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN, rpm_limit=30, budget_usd=5)
    assert (await post_limits(admin, key, {"concurrency_limit": "4"})).status_code == 303
    record = await stored(site, key)
    assert (record.rpm_limit, record.concurrency_limit, record.budget_usd) == (30, 4, 5)


async def test_an_expiry_left_as_shown_is_kept_even_when_it_has_passed(site, admin):
    # An expired key whose rate limit is edited: the form sends its past expiry back unchanged.
    passed = datetime.now(UTC) - timedelta(days=1, seconds=7)
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN, expires_at=passed)
    fields = {**EMPTY_FORM, "rpm_limit": "10", "expires_at": f"{passed:%Y-%m-%d %H:%M}"}
    assert (await post_limits(admin, key, fields)).status_code == 303
    record = await stored(site, key)
    assert record.rpm_limit == 10
    assert record.expires_at == passed


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"rpm_limit": "lots"}, "rpm_limit", "Give a whole number"),
        ({"rpm_limit": "0"}, "rpm_limit", "Give at least 1"),
        ({"concurrency_limit": "99999999999"}, "concurrency_limit", "Give at most 1,000,000"),
        ({"models": "only"}, "allowed_models", "Tick at least one model"),
        ({"models": "only", "allowed_models": "gpt-5"}, "allowed_models", "'allowed_models' names 'gpt-5'"),
        ({"expires_at": "next tuesday"}, "expires_at", "Give a date (2026-12-31)"),
        ({"expires_at": "2001-01-01"}, "expires_at", "2001-01-01 00:00 UTC has passed"),
        ({"budget_usd": "-5"}, "budget_usd", "A budget cannot be negative"),
        ({"budget_usd": "nan"}, "budget_usd", "Give an amount of US dollars"),
        ({"budget_period": "year"}, "budget_period", "Choose day, week, month"),
    ],
)
async def test_a_bad_value_is_shown_at_its_field_and_nothing_is_saved(site, admin, fields, field, message):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN, concurrency_limit=2)
    # Another field filled in well, to see it shown again as typed.
    typed = "rpm_limit" if field == "budget_usd" else "budget_usd"
    response = await post_limits(admin, key, {**EMPTY_FORM, typed: "7", **fields})
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    error = re.search(rf'<p id="{field}-error" class="field-error" role="alert">([^<]*)</p>', response.text)
    assert error, response.text
    assert html.unescape(error.group(1)).startswith(message)
    assert f'aria-describedby="{field}-error"' in response.text
    assert f'id="{typed}" name="{typed}"' in response.text
    assert 'value="7"' in response.text
    record = await stored(site, key)
    assert (record.concurrency_limit, record.rpm_limit, record.budget_usd) == (2, None, None)


async def test_limits_form_without_its_csrf_token_is_refused(site, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    response = await admin.post(
        f"/admin/keys/{key.id}/limits", data={"rpm_limit": "1"}, headers={**SAME_ORIGIN, **BROWSER}
    )
    assert response.status_code == 403
    assert "CSRF token" in response.text
    assert (await stored(site, key)).rpm_limit is None


async def test_limits_form_posted_from_another_site_is_refused(site, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    token = await session_csrf(admin)
    response = await admin.post(
        f"/admin/keys/{key.id}/limits",
        data={"rpm_limit": "1", "csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert (await stored(site, key)).rpm_limit is None


async def test_limits_form_needs_a_session(site, browser):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    response = await browser.post(
        f"/admin/keys/{key.id}/limits", data={"rpm_limit": "1"}, headers=SAME_ORIGIN
    )
    assert response.status_code == 303
    assert (await stored(site, key)).rpm_limit is None


# --- limits at creation ---------------------------------------------------------------------------


async def test_the_exchange_form_may_set_limits(site, admin):
    csrf = csrf_meta((await admin.get("/")).text)
    response = await admin.post(
        "/",
        data={
            "name": "ci",
            "oauth_token": FAKE_OAUTH_TOKEN,
            "csrf_token": csrf,
            **EMPTY_FORM,
            "rpm_limit": "20",
            "models": "only",
            "allowed_models": "haiku",
        },
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 200
    assert API_KEY.search(response.text)
    assert '<span class="chip">20/min</span><span class="chip">haiku</span>' in response.text
    [record] = await site.gateway.keys.list_keys()
    assert (record.rpm_limit, record.allowed_models, record.budget_usd) == (20, ("haiku",), None)


async def test_a_bad_limit_on_the_exchange_form_is_shown_and_makes_no_key(site, admin):
    csrf = csrf_meta((await admin.get("/")).text)
    response = await admin.post(
        "/",
        data={
            "name": "ci",
            "oauth_token": FAKE_OAUTH_TOKEN,
            "csrf_token": csrf,
            **EMPTY_FORM,
            "rpm_limit": "x",
        },
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 400
    assert 'id="rpm_limit-error"' in response.text
    assert '<details class="more" open>' in response.text
    assert 'value="ci"' in response.text
    assert API_KEY.search(response.text) is None
    assert await site.gateway.keys.list_keys() == []


# --- PATCH /admin/keys/{id} -----------------------------------------------------------------------


async def test_patch_sets_limits_and_answers_the_public_key(site, browser):
    key, api_key = await site.gateway.keys.create_key("script", FAKE_OAUTH_TOKEN)
    response = await browser.patch(
        f"/admin/keys/{key.id}",
        json={
            "rpm_limit": 30,
            "concurrency_limit": 2,
            "allowed_models": ["sonnet"],
            "expires_at": "2030-01-01T00:00:00Z",
            "budget_usd": 20,
            "budget_period": "month",
        },
        headers=ADMIN_AUTH,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == key.id
    assert body["rpm_limit"] == 30
    assert body["concurrency_limit"] == 2
    assert body["allowed_models"] == ["sonnet"]
    assert body["expires_at"] == "2030-01-01T00:00:00Z"
    assert body["budget_usd"] == 20.0
    assert body["budget_period"] == "month"
    assert body["token_health"]["state"] == "unknown"
    assert "api_key" not in body
    assert api_key not in response.text
    assert FAKE_OAUTH_TOKEN not in response.text
    record = await stored(site, key)
    assert (record.rpm_limit, record.allowed_models) == (30, ("sonnet",))


async def test_patch_lifts_a_limit_sent_as_null_and_keeps_one_left_out(site, browser):
    key, _ = await site.gateway.keys.create_key("script", FAKE_OAUTH_TOKEN, rpm_limit=30, budget_usd=5)
    response = await browser.patch(f"/admin/keys/{key.id}", json={"rpm_limit": None}, headers=ADMIN_AUTH)
    assert response.status_code == 200
    assert (response.json()["rpm_limit"], response.json()["budget_usd"]) == (None, 5.0)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"rpm_limit": "30"}, "rpm_limit"),
        ({"concurrency_limit": 10**12}, "concurrency_limit"),
        ({"allowed_models": []}, "allowed_models"),
        ({"allowed_models": ["gpt-5"]}, "allowed_models"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"budget_usd": -1}, "budget_usd"),
        ({"budget_period": "year"}, "budget_period"),
        ({"name": "renamed"}, "name"),
    ],
)
async def test_patch_names_the_limit_at_fault(site, browser, body, param):
    key, _ = await site.gateway.keys.create_key("script", FAKE_OAUTH_TOKEN)
    response = await browser.patch(f"/admin/keys/{key.id}", json=body, headers=ADMIN_AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert await stored(site, key) == key


async def test_patch_of_an_unknown_key_is_404(browser):
    response = await browser.patch("/admin/keys/key_nope", json={"rpm_limit": 1}, headers=ADMIN_AUTH)
    assert response.status_code == 404


async def test_patch_needs_the_admin_password_or_a_session_with_its_csrf_header(site, browser, admin):
    key, _ = await site.gateway.keys.create_key("script", FAKE_OAUTH_TOKEN)
    async with site.client() as stranger:
        assert (await stranger.patch(f"/admin/keys/{key.id}", json={"rpm_limit": 1})).status_code == 401
    refused = await admin.patch(f"/admin/keys/{key.id}", json={"rpm_limit": 1}, headers=SAME_ORIGIN)
    assert refused.status_code == 403
    assert (await stored(site, key)).rpm_limit is None
    token = await session_csrf(admin)
    allowed = await admin.patch(
        f"/admin/keys/{key.id}", json={"rpm_limit": 1}, headers={**SAME_ORIGIN, "x-csrf-token": token}
    )
    assert allowed.status_code == 200
    assert (await stored(site, key)).rpm_limit == 1


async def test_listing_carries_limits_and_token_health(site, browser):
    key, _ = await site.gateway.keys.create_key("script", FAKE_OAUTH_TOKEN, allowed_models=["opus"])
    await site.gateway.keys.record_upstream_result(key.id, ok=False, error=REJECTED)
    [listed] = (await browser.get("/admin/keys", headers=ADMIN_AUTH)).json()["data"]
    assert listed["allowed_models"] == ["opus"]
    assert listed["rpm_limit"] is None
    health = listed["token_health"]
    assert health["state"] == "rejected"
    assert "claude setup-token" in health["detail"]
    assert health["last_error_at"] is not None
    assert health["last_success_at"] is None


# --- the dashboard's rows -------------------------------------------------------------------------


async def test_dashboard_rows_show_limits_in_short(site, admin):
    limited, _ = await site.gateway.keys.create_key(
        "limited",
        FAKE_OAUTH_TOKEN,
        rpm_limit=1200,
        concurrency_limit=2,
        allowed_models=["sonnet", "haiku", "opus"],
        expires_at=datetime(2030, 12, 31, tzinfo=UTC),
        budget_usd=20,
        budget_period="month",
    )
    free, _ = await site.gateway.keys.create_key("free", FAKE_OAUTH_TOKEN)
    page = (await admin.get("/admin")).text
    chips = re.findall(r'<span class="chip">([^<]*)</span>', row_of(page, limited))
    assert chips == ["1,200/min", "2 at once", "sonnet, haiku +1", "$20/month", "until 2030-12-31"]
    assert '<span class="muted">none</span>' in row_of(page, free)
    assert f'href="/admin/keys/{limited.id}/limits"' in row_of(page, limited)
    assert f'href="/admin/keys/{limited.id}"' in row_of(page, limited)


async def test_a_revoked_key_offers_no_limits_link(site, admin):
    key, _ = await site.gateway.keys.create_key("gone", FAKE_OAUTH_TOKEN)
    await site.gateway.keys.revoke_key(key.id)
    assert f"/admin/keys/{key.id}/limits" not in row_of((await admin.get("/admin")).text, key)


# --- token health ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ok", "error", "state", "label", "note"),
    [
        (True, None, "ok", "OK", None),
        (None, None, "unknown", "Unused", None),
        (False, REJECTED, "rejected", "Rejected", "`claude setup-token` issues a long-lived one"),
        (False, AT_USAGE_LIMIT, "limited", "Usage limit", "it resets at 2026-11-25T18:00:00+00:00"),
    ],
)
async def test_dashboard_and_key_page_show_the_token_state(site, admin, ok, error, state, label, note):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    if ok is not None:
        await site.gateway.keys.record_upstream_result(key.id, ok=ok, error=error)
    dashboard = (await admin.get("/admin")).text
    assert f'data-token-state="{state}"' in row_of(dashboard, key)
    assert f">{label}</span>" in row_of(dashboard, key)
    key_page = (await admin.get(f"/admin/keys/{key.id}")).text
    assert f'data-token-state="{state}"' in key_page
    if note is None:
        assert f'data-note-for="{key.id}"' not in dashboard
        assert "data-token-detail" not in key_page
    else:
        assert f'data-note-for="{key.id}"' in dashboard
        assert html.escape(note) in dashboard
        assert html.escape(note) in key_page


async def test_a_newer_success_clears_a_rejection(site, admin):
    key, _ = await site.gateway.keys.create_key("laptop", FAKE_OAUTH_TOKEN)
    now = datetime.now(UTC)
    await site.gateway.keys.record_upstream_result(
        key.id, ok=False, error=REJECTED, when=now - timedelta(hours=1)
    )
    await site.gateway.keys.record_upstream_result(key.id, ok=True, when=now)
    page = (await admin.get("/admin")).text
    assert 'data-token-state="ok"' in row_of(page, key)
    assert f'data-note-for="{key.id}"' not in page


# --- the usage chart ------------------------------------------------------------------------------


async def test_dashboard_charts_the_last_24_hours_of_every_key(site, admin):
    first, _ = await site.gateway.keys.create_key("one", FAKE_OAUTH_TOKEN)
    second, _ = await site.gateway.keys.create_key("two", FAKE_OAUTH_TOKEN)
    now = datetime.now(UTC)
    for key_id, when in [
        (first.id, now),
        (second.id, now),
        (first.id, now - timedelta(hours=3)),
        (first.id, now - timedelta(days=3)),  # outside the 24 hours, inside the 14 days
    ]:
        await site.gateway.usage.record(usage(key_id, when, input_tokens=1000, output_tokens=200))

    page = (await admin.get("/admin")).text
    requests = bars(page, "requests")
    assert len(requests) == 24
    # The newest hour, or the one before if the page was drawn as a new hour began.
    newest = requests.index(2)
    assert newest >= 22
    assert requests[newest - 3] == 1
    assert sum(requests) == 3
    tokens = bars(page, "tokens")
    assert len(tokens) == 48  # input and output stacked in each hour
    assert tokens[2 * newest : 2 * newest + 2] == [2000, 400]
    assert "3 requests · 3,600 tokens in the last 24 hours" in " ".join(page.split())
    assert '<title id="requests-chart-title">Requests per hour, last 24 hours</title>' in page
    assert "3 requests in the last 24 hours; the most, 2, in the hour from" in page
    assert page.count('<th scope="row">') == 24  # the same numbers as a table

    days = bars((await admin.get("/admin?range=14d")).text, "requests")
    assert len(days) == 14
    assert sum(days) == 4
    assert days[-4] == 1 or days[-5] == 1


async def test_key_page_charts_that_key_alone(site, admin):
    mine, _ = await site.gateway.keys.create_key("mine", FAKE_OAUTH_TOKEN)
    other, _ = await site.gateway.keys.create_key("other", FAKE_OAUTH_TOKEN)
    now = datetime.now(UTC)
    await site.gateway.usage.record(usage(mine.id, now))
    await site.gateway.usage.record(usage(other.id, now))
    await site.gateway.usage.record(usage(other.id, now))
    page = (await admin.get(f"/admin/keys/{mine.id}")).text
    assert sum(bars(page, "requests")) == 1
    days = (await admin.get(f"/admin/keys/{mine.id}?range=14d")).text
    assert len(bars(days, "requests")) == 14
    assert sum(bars(days, "requests")) == 1


async def test_chart_without_usage_says_so(admin):
    page = (await admin.get("/admin")).text
    assert bars(page, "requests") == [0] * 24
    assert "No requests in the last 24 hours." in page


async def test_range_links_keep_the_filter(admin):
    page = (await admin.get("/admin?q=ci&range=14d")).text
    assert '<a href="/admin?q=ci">24 hours</a>' in page
    assert '<a href="/admin?q=ci&amp;range=14d" aria-current="true">14 days</a>' in page
    assert '<input type="hidden" name="range" value="14d">' in page
    unknown = (await admin.get("/admin?range=forever")).text
    assert len(bars(unknown, "requests")) == 24


# --- what the admin typed, and what upstream said, is escaped --------------------------------------


async def test_names_and_upstream_messages_are_escaped(site, admin):
    key, _ = await site.gateway.keys.create_key(XSS, FAKE_OAUTH_TOKEN)
    await site.gateway.keys.record_upstream_result(key.id, ok=False, error=f"rejected: {XSS}")
    for path in ("/admin", f"/admin/keys/{key.id}", f"/admin/keys/{key.id}/limits"):
        page = (await admin.get(path)).text
        assert XSS not in page, path
        assert html.escape(XSS) in page, path
    typed = await post_limits(admin, key, {**EMPTY_FORM, "rpm_limit": '"><img src=x onerror=alert(1)>'})
    assert typed.status_code == 400
    assert "<img src=x" not in typed.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in typed.text
