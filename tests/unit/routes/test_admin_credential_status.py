"""Tests of routes/admin_credential_status.py: a credential's row on the credentials page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from claude_code_api.claude.routing import CredentialHealth, CredentialReport
from claude_code_api.routes.admin_credential_status import QuotaWindow, credential_statuses
from claude_code_api.store.credential_kinds import CredentialOptions
from claude_code_api.store.credentials import Credential, CredentialState
from claude_code_api.store.usage import UsageTotals
from tests.factories import make_api_key

NOW = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
RESET = int((NOW + timedelta(hours=2)).timestamp())
WEEK_RESET = int((NOW + timedelta(days=3)).timestamp())
QUOTA = {
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": str(RESET),
    "anthropic-ratelimit-unified-7d-utilization": "0.1",
    "anthropic-ratelimit-unified-7d-reset": str(WEEK_RESET),
}


def make_credential(name: str, state: CredentialState | None = None) -> Credential:
    return Credential(
        id=f"cred_{name}",
        name=name,
        kind="subscription",
        hint="abcd",
        options=CredentialOptions(),
        state=state or CredentialState(),
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_row_carries_quota_counters_keys_and_usage() -> None:
    sub = make_credential("sub")
    report = CredentialReport(
        "sub", CredentialHealth(utilization=0.42, quota=QUOTA), failovers=3, extra_usage_events=1
    )
    on_it = make_api_key(name="team", credential_ranks=(("sub",), ("other",)))
    elsewhere = make_api_key(name="solo", credential_ranks=(("other",),))
    revoked = make_api_key(name="gone", credential_ranks=(("sub",),), revoked_at=NOW - timedelta(days=1))
    totals = UsageTotals(4, 100, 20, 0, 0, 0.1)

    (row,) = credential_statuses(
        [sub], {"sub": report}, [on_it, elsewhere, revoked], {"sub": totals}, NOW.timestamp()
    )

    assert row.state == "ok"
    assert row.five_hour == QuotaWindow(0.42, datetime.fromtimestamp(RESET, UTC))
    assert row.weekly == QuotaWindow(0.1, datetime.fromtimestamp(WEEK_RESET, UTC))
    assert (row.failovers, row.extra_usage_events) == (3, 1)
    assert [key.name for key in row.keys] == ["team"]
    assert row.usage == totals


def test_a_state_shows_its_reason_and_end_until_its_time_is_up() -> None:
    until = NOW + timedelta(minutes=30)
    stored = CredentialState("exhausted", "usage limit", until)
    limited = make_credential("limited", stored)
    past = make_credential("past", CredentialState("broken", "rejected", NOW - timedelta(minutes=1)))
    reports = {
        "limited": CredentialReport(
            "limited", CredentialHealth("exhausted", until.timestamp(), "usage limit")
        )
    }

    limited_row, past_row = credential_statuses([limited, past], reports, [], {}, NOW.timestamp())

    assert (limited_row.state, limited_row.reason, limited_row.until) == ("exhausted", "usage limit", until)
    assert (past_row.state, past_row.reason, past_row.until) == ("ok", None, None)
    assert past_row.five_hour is None
    assert past_row.usage is None
