"""What an operator sees of upstream credentials: /metrics series by credential name, /v1/health
degraded when a key has no usable credential, usage recorded per credential, and the credentials page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from claude_agent_sdk import RateLimitInfo
from prometheus_client.parser import text_string_to_metric_families

from claude_code_api.errors import UsageLimitError
from claude_code_api.store.credential_kinds import CredentialInput, CredentialSecrets
from claude_code_api.store.usage import UsageRecord
from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, Quota
from tests.integration.test_credential_routing import CONSOLE_KEY, add, chat, key_on

METRICS_TOKEN = "metrics-visibility-token"


@pytest.fixture
def gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, metrics_token=METRICS_TOKEN)
    with GatewayServer(settings) as server:
        yield server
    assert not claude_processes()


def scrape(server: GatewayServer) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = httpx.get(
        f"{server.url}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, found


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_failover_shows_in_metrics_health_and_usage_by_credential_name(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    limited = make_oauth_token()
    reset = int(time.time()) + 3600
    mock_anthropic.set_quota(limited, Quota.exhausted(reset))
    mock_anthropic.always(ErrorReply.usage_limit(reset), credential=limited)
    add(gateway, "a", "subscription", oauth_token=limited)
    add(gateway, "b", "anthropic-api-key", api_key=CONSOLE_KEY)
    key = key_on(gateway, ["a"], ["b"])

    assert chat(gateway, key, "first") == "Echo: first"
    assert chat(gateway, key, "second", stream=True) == "Echo: second"

    def counted() -> bool:
        return (
            scrape(gateway)[1].get(
                ("claude_code_api_credential_requests_total", (("credential", "b"), ("status", "200")))
            )
            == 2
        )

    wait_for(counted)
    text, found = scrape(gateway)
    assert limited not in text
    assert CONSOLE_KEY not in text
    assert found[("claude_code_api_credential_state", (("credential", "a"),))] == 1
    assert found[("claude_code_api_credential_state", (("credential", "b"),))] == 0
    assert found[("claude_code_api_credential_failovers_total", (("credential", "a"),))] == 1
    assert found[("claude_code_api_credential_tokens_total", (("credential", "b"), ("type", "output")))] > 0

    health = httpx.get(f"{gateway.url}/v1/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["credentials"] == {"ok": 1, "exhausted": 1, "broken": 0}
    assert health["keys_without_usable_credential"] == 0

    assert gateway.gateway is not None
    usage = gateway.gateway.usage
    # Usage is written in batches, a moment after each answer.
    wait_for(lambda: sum(t.requests for t in gateway.call(usage.totals_by_credential()).values()) >= 2)
    totals = gateway.call(usage.totals_by_credential())
    assert set(totals) == {"b"}
    assert totals["b"].requests == 2

    key_on(gateway, ["a"])
    health = httpx.get(f"{gateway.url}/v1/health", timeout=10).json()
    assert health["status"] == "degraded"
    assert health["keys_without_usable_credential"] == 1


def test_extra_usage_refused_is_counted_for_its_credential(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    paying = make_oauth_token()
    mock_anthropic.set_quota(paying, Quota.extra_usage(int(time.time()) + 3600))
    add(gateway, "c", "subscription", oauth_token=paying)
    add(gateway, "b", "anthropic-api-key", api_key=CONSOLE_KEY)
    key = key_on(gateway, ["c"], ["b"])

    for number in range(2):
        assert chat(gateway, key, f"question {number}") == f"Echo: question {number}"

    _, found = scrape(gateway)
    assert found[("claude_code_api_credential_extra_usage_events_total", (("credential", "c"),))] == 1
    assert found[("claude_code_api_credential_state", (("credential", "c"),))] == 1
    assert found[("claude_code_api_credential_utilization", (("credential", "c"),))] == 1.0


async def test_the_credentials_page_shows_state_quota_keys_and_usage(site, admin) -> None:
    store = site.gateway.keys.credentials
    token = make_oauth_token()
    await store.add_credential(
        CredentialInput(name="sub", kind="subscription", secrets=CredentialSecrets(oauth_token=token))
    )
    await store.add_credential(
        CredentialInput(
            name="console", kind="anthropic-api-key", secrets=CredentialSecrets(api_key=CONSOLE_KEY)
        )
    )
    record, _ = await site.gateway.keys.create_key("team-key", None, credentials=[["sub"], ["console"]])
    sub = (await store.upstream_credential("sub")).upstream()
    router = site.gateway.runner.router
    reset = int(time.time()) + 7200
    await router.observe(
        sub,
        RateLimitInfo(
            status="allowed",
            resets_at=reset,
            raw={"unifiedWindows": {"five_hour": {"utilization": 0.42, "resetsAt": reset}}},
        ),
    )
    await router.failed(sub, UsageLimitError("limit", retry_after=600), 0)
    await site.gateway.usage.record(
        UsageRecord(
            key_id=record.id,
            created_at=datetime.now(UTC),
            model="claude-sonnet-4-5",
            status=200,
            endpoint="/v1/chat/completions",
            input_tokens=1234,
            output_tokens=56,
            credential="console",
        )
    )

    page = (await admin.get("/admin/credentials")).text

    assert token not in page
    assert CONSOLE_KEY not in page
    sub_row = page[page.index('data-credential="sub"') :].split("</tr>")[0]
    assert "exhausted" in sub_row
    assert "usage limit" in sub_row
    assert "42&nbsp;%" in sub_row
    assert "resets" in sub_row
    assert "team-key" in sub_row
    console_row = page[page.index('data-credential="console"') :].split("</tr>")[0]
    assert "1,234 / 56" in console_row
    assert "team-key" in console_row
    assert "this instance's view" in page


def test_a_removed_credential_leaves_health_and_metrics(gateway: GatewayServer) -> None:
    add(gateway, "gone", "anthropic-api-key", api_key=CONSOLE_KEY)
    assert gateway.gateway is not None
    store = gateway.gateway.keys.credentials
    upstream = gateway.call(store.upstream_credential("gone")).upstream()
    router = gateway.gateway.runner.router
    gateway.call(router.failed(upstream, UsageLimitError("limit", retry_after=600), 0))
    assert httpx.get(f"{gateway.url}/v1/health", timeout=10).json()["credentials"]["exhausted"] == 1

    gateway.call(store.remove_credential("gone"))

    wait_for(
        lambda: httpx.get(f"{gateway.url}/v1/health", timeout=10).json()["credentials"]["exhausted"] == 0
    )
    _, found = scrape(gateway)
    assert ("claude_code_api_credential_state", (("credential", "gone"),)) not in found
