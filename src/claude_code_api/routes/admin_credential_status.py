"""What the credentials page shows of each credential beside its record: state, quota windows, counters,
the keys that use it and its usage; pure, built from the store's records and this instance's router."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from claude_code_api.claude.routing import CredentialReport, HealthState
from claude_code_api.store.credentials import Credential
from claude_code_api.store.keys import ApiKey
from claude_code_api.store.usage import UsageTotals

_QUOTA_PREFIX = "anthropic-ratelimit-unified-"


@dataclass(frozen=True)
class QuotaWindow:
    """One of a subscription's quota windows as last reported: how full (0..1) and when it resets."""

    utilization: float
    resets_at: datetime | None


@dataclass(frozen=True)
class CredentialStatus:
    """One row of the credentials page."""

    credential: Credential
    state: HealthState
    until: datetime | None
    reason: str | None
    five_hour: QuotaWindow | None
    weekly: QuotaWindow | None
    extra_usage_events: int
    failovers: int
    keys: tuple[ApiKey, ...]
    usage: UsageTotals | None


def credential_statuses(
    credentials: Iterable[Credential],
    reports: Mapping[str, CredentialReport],
    keys: Iterable[ApiKey],
    usage: Mapping[str, UsageTotals],
    now: float,
) -> list[CredentialStatus]:
    """A row per credential: the state routing acts on now (a state whose time is up reads ok), with
    the reason and end the store holds; quota and counters as this instance saw them; the active keys
    that rank it; requests and tokens from the usage records."""
    active = [key for key in keys if key.is_active_at(datetime.fromtimestamp(now, UTC))]
    rows = []
    for credential in credentials:
        report = reports.get(credential.name)
        state: HealthState = credential.state.state
        if report is not None:
            state = report.effective_state(now)
        elif credential.state.until is not None and credential.state.until.timestamp() <= now:
            state = "ok"
        quota = report.health.quota if report is not None else {}
        rows.append(
            CredentialStatus(
                credential=credential,
                state=state,
                until=None if state == "ok" else credential.state.until,
                reason=None if state == "ok" else credential.state.reason,
                five_hour=_window(quota, "5h"),
                weekly=_window(quota, "7d"),
                extra_usage_events=0 if report is None else report.extra_usage_events,
                failovers=0 if report is None else report.failovers,
                keys=tuple(
                    key for key in active if any(credential.name in rank for rank in key.credential_ranks)
                ),
                usage=usage.get(credential.name),
            )
        )
    return rows


def _window(quota: Mapping[str, str], short: str) -> QuotaWindow | None:
    """A quota window from the unified headers a subscription's answer carried, or None when absent."""
    utilization = quota.get(f"{_QUOTA_PREFIX}{short}-utilization")
    if utilization is None:
        return None
    try:
        value = float(utilization)
    except ValueError:
        return None
    reset = quota.get(f"{_QUOTA_PREFIX}{short}-reset")
    resets_at = datetime.fromtimestamp(int(reset), UTC) if reset and reset.isdigit() else None
    return QuotaWindow(value, resets_at)
