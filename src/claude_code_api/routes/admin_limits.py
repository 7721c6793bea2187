"""Per-key limits as the admin pages show and take them: the short form of a dashboard row, and the
limits form read into the KeyLimits that `KeyStore.update_key` and `create_key` take; pure.

The form works without JavaScript: an empty field lifts its limit, and a field the form does not send
leaves its limit as it is. Each problem is named by its field, so that the page shows it inline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from starlette.datastructures import ImmutableMultiDict

from claude_code_api import catalog
from claude_code_api.routes.admin_schemas import MAX_COUNT_LIMIT, ApiKeyPublic
from claude_code_api.store.keys import BUDGET_PERIODS, ApiKey, KeyLimits

# The fields of the limits form; an error named by another parameter is shown above the form.
LIMIT_FIELDS = (
    "rpm_limit",
    "concurrency_limit",
    "allowed_models",
    "expires_at",
    "budget_usd",
    "budget_period",
)
# How the form shows an expiry: to the minute, in UTC (the form says so).
_FORM_MINUTE = "%Y-%m-%d %H:%M"
# An expiry may also be given as a duration from now, as `keys create --expires` takes it.
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class LimitsForm:
    """The limits form as shown: each field's text as typed (or the key's current value), its errors."""

    rpm_limit: str = ""
    concurrency_limit: str = ""
    models: Literal["any", "only"] = "any"
    allowed_models: tuple[str, ...] = ()
    expires_at: str = ""
    budget_usd: str = ""
    budget_period: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, key: ApiKey | None) -> LimitsForm:
        """The form filled with the key's limits; empty (no limits) without a key."""
        if key is None:
            return cls()
        return cls(
            rpm_limit=_text(key.rpm_limit),
            concurrency_limit=_text(key.concurrency_limit),
            models="any" if key.allowed_models is None else "only",
            allowed_models=key.allowed_models or (),
            expires_at=""
            if key.expires_at is None
            else key.expires_at.astimezone(UTC).strftime(_FORM_MINUTE),
            budget_usd="" if key.budget_usd is None else _amount_text(key.budget_usd),
            budget_period=key.budget_period or "",
        )

    @property
    def model_choices(self) -> list[str]:
        """The models to tick: those the gateway lists, then any other the key allows."""
        listed = catalog.model_ids()
        return [*listed, *(model for model in self.allowed_models if model not in listed)]

    @property
    def budget_periods(self) -> tuple[str, ...]:
        return BUDGET_PERIODS

    def with_error(self, param: str | None, message: str) -> LimitsForm:
        """The form with one more problem; one that names no field of the form is shown above it."""
        name = param if param in LIMIT_FIELDS else "form"
        return replace(self, errors={**self.errors, name: message})


def read_limits_form(
    form: ImmutableMultiDict[str, str], current: ApiKey | None, now: datetime
) -> tuple[LimitsForm, KeyLimits]:
    """Reads the limits a posted form sets, against the key's `current` ones (None for a new key).

    Returns the form to show again, with an error per field in trouble, and the limits to store: only
    the fields the form sent, and an expiry only when it changed, so that a key that has expired (or
    one whose expiry has seconds) keeps it while another limit is edited.
    """
    shown = LimitsForm.of(current)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if "rpm_limit" in form:
        shown = replace(shown, rpm_limit=form["rpm_limit"])
        _read(values, errors, "rpm_limit", _count, form["rpm_limit"])
    if "concurrency_limit" in form:
        shown = replace(shown, concurrency_limit=form["concurrency_limit"])
        _read(values, errors, "concurrency_limit", _count, form["concurrency_limit"])
    if "models" in form:
        chosen = tuple(
            dict.fromkeys(model.strip() for model in form.getlist("allowed_models") if model.strip())
        )
        only = form["models"] == "only"
        shown = replace(shown, models="only" if only else "any", allowed_models=chosen)
        if not only:
            values["allowed_models"] = None
        elif chosen:
            values["allowed_models"] = list(chosen)
        else:
            errors["allowed_models"] = "Tick at least one model, or choose “Any model”."
    if "expires_at" in form:
        text = form["expires_at"].strip()
        if text != shown.expires_at:
            _read(values, errors, "expires_at", lambda text: _expiry(text, now), text)
        shown = replace(shown, expires_at=text)
    if "budget_usd" in form:
        shown = replace(shown, budget_usd=form["budget_usd"])
        _read(values, errors, "budget_usd", _usd, form["budget_usd"])
    if "budget_period" in form:
        period = form["budget_period"].strip()
        shown = replace(shown, budget_period=period)
        if period and period not in BUDGET_PERIODS:
            errors["budget_period"] = f"Choose {', '.join(BUDGET_PERIODS)}, or “in all”."
        else:
            values["budget_period"] = period or None
    return replace(shown, errors=errors), cast(KeyLimits, values)


def short_limits(key: ApiKey | ApiKeyPublic) -> list[str]:
    """A key's limits in a few words each, for its row on the dashboard; empty when it has none."""
    notes = []
    if key.rpm_limit is not None:
        notes.append(f"{key.rpm_limit:,}/min")
    if key.concurrency_limit is not None:
        notes.append(f"{key.concurrency_limit:,} at once")
    if key.allowed_models is not None:
        shown = key.allowed_models[:2]
        more = len(key.allowed_models) - len(shown)
        notes.append(", ".join(shown) + (f" +{more}" if more else ""))
    if key.budget_usd is not None:
        notes.append(usd(key.budget_usd) + (f"/{key.budget_period}" if key.budget_period else " in all"))
    if key.expires_at is not None:
        notes.append(f"until {key.expires_at.astimezone(UTC):%Y-%m-%d}")
    return notes


def usd(amount: float) -> str:
    """An amount of US dollars as people write it: $20, $12.50, $0.0042."""
    if amount == int(amount):
        return f"${int(amount):,}"
    if amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.4f}"


# --- reading one field ------------------------------------------------------------------------------


def _read(
    values: dict[str, Any], errors: dict[str, str], name: str, parse: Callable[[str], object], text: str
) -> None:
    try:
        values[name] = parse(text.strip())
    except ValueError as exc:
        errors[name] = str(exc)


def _count(text: str) -> int | None:
    if not text:
        return None
    try:
        count = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise ValueError("Give a whole number, or leave it empty for no limit.") from None
    if count < 1:
        raise ValueError("Give at least 1, or leave it empty for no limit.")
    if count > MAX_COUNT_LIMIT:
        raise ValueError(f"Give at most {MAX_COUNT_LIMIT:,}, or leave it empty for no limit.")
    return count


def _usd(text: str) -> float | None:
    if not text:
        return None
    try:
        amount = float(text.removeprefix("$").replace(",", "").strip())
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount):
        raise ValueError("Give an amount of US dollars such as 20 or 12.50, or leave it empty for no budget.")
    if amount < 0:
        raise ValueError("A budget cannot be negative; leave it empty for no budget.")
    return amount


def _expiry(text: str, now: datetime) -> datetime | None:
    if not text:
        return None
    duration = _DURATION.fullmatch(text.lower())
    if duration is not None:
        amount, unit = duration.groups()
        moment = now + timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                "Give a date (2026-12-31), a date and time (2026-12-31 18:00, UTC unless it has an offset) "
                "or a duration from now (90m, 12h, 30d, 2w); leave it empty and the key never expires."
            ) from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment <= now:
        raise ValueError(f"{moment:%Y-%m-%d %H:%M} UTC has passed; to stop the key now, revoke it.")
    return moment


def _amount_text(amount: float) -> str:
    # Cents as people write them, but never rounded: the form sends the amount back as it shows it.
    cents = f"{amount:.2f}"
    return cents if float(cents) == amount else repr(amount)


def _text(number: int | None) -> str:
    return "" if number is None else str(number)
