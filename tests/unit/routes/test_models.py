"""Tests of routes/models.py's health verdict on credentials: counts by state, and keys left with none."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from claude_code_api.claude.routing import CredentialHealth, CredentialReport
from claude_code_api.routes.models import credential_counts, keys_without_usable_credential
from tests.factories import make_api_key

NOW = time.time()
REPORTS = {
    "ok": CredentialReport("ok", CredentialHealth()),
    "limited": CredentialReport("limited", CredentialHealth("exhausted", NOW + 600, "usage limit")),
    "rejected": CredentialReport("rejected", CredentialHealth("broken", NOW + 60, "rejected")),
    "back": CredentialReport("back", CredentialHealth("exhausted", NOW - 1, "usage limit")),
}


def test_credentials_are_counted_by_the_state_routing_acts_on() -> None:
    assert credential_counts(REPORTS.values(), NOW) == {"ok": 2, "exhausted": 1, "broken": 1}


@pytest.mark.parametrize(
    ("ranks", "stranded"),
    [
        ((("ok",),), 0),
        ((("limited",), ("ok",)), 0),
        ((("limited", "back"),), 0),
        ((("unseen",),), 0),  # not yet followed from the store: nothing says it cannot answer
        ((("limited",), ("rejected",)), 1),
        ((), 1),
    ],
)
def test_an_active_key_with_no_usable_credential_is_counted(
    ranks: tuple[tuple[str, ...], ...], stranded: int
) -> None:
    key = make_api_key(credential_ranks=ranks)
    assert keys_without_usable_credential([key], REPORTS, NOW) == stranded


def test_revoked_and_expired_keys_do_not_count() -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    keys = [
        make_api_key(credential_ranks=(("limited",),), revoked_at=past),
        make_api_key(credential_ranks=(("limited",),), expires_at=past),
    ]
    assert keys_without_usable_credential(keys, REPORTS, NOW) == 0
