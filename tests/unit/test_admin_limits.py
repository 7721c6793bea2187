"""Tests of routes/admin_limits.py: the limits form read into KeyLimits, and limits in short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import ImmutableMultiDict

from claude_code_api.routes.admin_limits import LimitsForm, read_limits_form, short_limits, usd
from claude_code_api.routes.admin_schemas import ApiKeyPublic
from tests.factories import make_api_key

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def read(pairs: list[tuple[str, str]], **current):
    return read_limits_form(ImmutableMultiDict(pairs), make_api_key(**current) if current else None, NOW)


@pytest.mark.parametrize(
    ("pairs", "limits"),
    [
        ([], {}),
        ([("rpm_limit", " 1,200 ")], {"rpm_limit": 1200}),
        ([("rpm_limit", "")], {"rpm_limit": None}),
        ([("concurrency_limit", "3")], {"concurrency_limit": 3}),
        ([("models", "any"), ("allowed_models", "opus")], {"allowed_models": None}),
        (
            [
                ("models", "only"),
                ("allowed_models", "opus"),
                ("allowed_models", "opus"),
                ("allowed_models", "gpt-4"),
            ],
            {"allowed_models": ["opus", "gpt-4"]},
        ),
        ([("expires_at", "2027-01-01")], {"expires_at": datetime(2027, 1, 1, tzinfo=UTC)}),
        ([("expires_at", "2027-01-01 08:30+02:00")], {"expires_at": datetime(2027, 1, 1, 6, 30, tzinfo=UTC)}),
        ([("expires_at", "12h")], {"expires_at": NOW + timedelta(hours=12)}),
        ([("expires_at", "")], {}),
        ([("budget_usd", "$1,000.50")], {"budget_usd": 1000.5}),
        ([("budget_usd", "0")], {"budget_usd": 0.0}),
        ([("budget_period", "week")], {"budget_period": "week"}),
        ([("budget_period", "")], {"budget_period": None}),
    ],
)
def test_a_posted_form_sets_the_limits_it_sends(pairs, limits):
    form, read_limits = read(pairs)
    assert form.errors == {}
    assert read_limits == limits


def test_an_expiry_shown_unchanged_is_left_as_it_is():
    expires_at = NOW - timedelta(days=2, seconds=5)
    form, limits = read([("expires_at", f"{expires_at:%Y-%m-%d %H:%M}")], expires_at=expires_at)
    assert (form.errors, limits) == ({}, {})
    _, cleared = read([("expires_at", "")], expires_at=expires_at)
    assert cleared == {"expires_at": None}


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("rpm_limit", "1.5")], "rpm_limit"),
        ([("concurrency_limit", "-1")], "concurrency_limit"),
        ([("models", "only")], "allowed_models"),
        ([("expires_at", "2026-11-25 11:59")], "expires_at"),
        ([("expires_at", "soon")], "expires_at"),
        ([("budget_usd", "inf")], "budget_usd"),
        ([("budget_period", "year")], "budget_period"),
    ],
)
def test_each_problem_is_named_by_its_field(pairs, field):
    form, limits = read(pairs)
    assert list(form.errors) == [field]
    assert field not in limits


def test_the_form_shows_what_was_typed():
    form, _ = read([("rpm_limit", "lots"), ("budget_usd", "7")], rpm_limit=30)
    assert (form.rpm_limit, form.budget_usd) == ("lots", "7")


def test_the_form_of_a_key_offers_the_models_it_allows_beyond_the_catalog():
    form = LimitsForm.of(make_api_key(allowed_models=("sonnet", "claude-sonnet-4-5-20250929")))
    assert form.models == "only"
    assert form.model_choices[-1] == "claude-sonnet-4-5-20250929"
    assert form.model_choices.count("sonnet") == 1


@pytest.mark.parametrize(("budget", "shown"), [(20, "20.00"), (12.5, "12.50"), (0.0042, "0.0042")])
def test_a_budget_is_shown_as_it_is_stored_so_that_saving_keeps_it(budget, shown):
    form = LimitsForm.of(make_api_key(budget_usd=budget))
    assert form.budget_usd == shown
    assert read([("budget_usd", shown)], budget_usd=budget)[1] == {"budget_usd": budget}


def test_an_error_of_no_field_goes_above_the_form():
    assert LimitsForm().with_error(None, "Oops.").errors == {"form": "Oops."}
    assert LimitsForm().with_error("rpm_limit", "Low.").errors == {"rpm_limit": "Low."}


def test_limits_in_short():
    key = make_api_key(
        rpm_limit=60,
        concurrency_limit=2,
        allowed_models=("haiku",),
        budget_usd=12.5,
        expires_at=datetime(2030, 5, 6, 23, 0, tzinfo=UTC),
    )
    assert short_limits(key) == ["60/min", "2 at once", "haiku", "$12.50 in all", "until 2030-05-06"]
    assert short_limits(ApiKeyPublic.of(key, None, NOW)) == short_limits(key)
    assert short_limits(make_api_key()) == []


@pytest.mark.parametrize(
    ("amount", "text"), [(20, "$20"), (1234.5, "$1,234.50"), (0.0042, "$0.0042"), (0, "$0")]
)
def test_dollars_are_written_as_people_write_them(amount, text):
    assert usd(amount) == text
