"""Wire shapes of the admin JSON API: what it takes (an exchange, new limits) and what it shows of a key;
pure. Named after the template's `UserCreate`/`UserPublic`, so that a secret cannot slip into an answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from claude_code_api.store.keys import ApiKey, KeyLimits
from claude_code_api.store.usage import UsageTotals

# PostgreSQL keeps the counts in 32-bit columns; far past any real limit, and refused with a 400.
MAX_COUNT_LIMIT = 1_000_000


class ApiKeyCreate(BaseModel):
    """What `POST /auth/exchange` takes."""

    model_config = ConfigDict(extra="forbid")

    oauth_token: str
    name: str = "unnamed"


class ApiKeyLimitsUpdate(BaseModel):
    """What `PATCH /admin/keys/{id}` takes: a limit left out stays as it is, one set to null is lifted.

    The key store checks the values and names the one at fault.
    """

    model_config = ConfigDict(extra="forbid")

    rpm_limit: Annotated[int, Field(le=MAX_COUNT_LIMIT)] | None = None
    concurrency_limit: Annotated[int, Field(le=MAX_COUNT_LIMIT)] | None = None
    allowed_models: list[str] | None = None
    expires_at: datetime | None = None
    budget_usd: Annotated[float, Field(allow_inf_nan=False)] | None = None
    budget_period: str | None = None

    def limits(self) -> KeyLimits:
        """The limits the body names, and only those."""
        return cast(KeyLimits, {name: getattr(self, name) for name in self.model_fields_set})


class UsagePublic(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class TokenHealthPublic(BaseModel):
    """How the key's OAuth token fared upstream last; `detail` says what to do about a rejection."""

    state: Literal["ok", "rejected", "limited", "unknown"]
    detail: str
    last_success_at: datetime | None
    last_error_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> TokenHealthPublic:
        health = key.token_health
        return cls(
            state=cast(Literal["ok", "rejected", "limited", "unknown"], health.state),
            detail=health.detail,
            last_success_at=key.last_upstream_success_at,
            last_error_at=key.last_upstream_error_at,
        )


class ApiKeyPublic(BaseModel):
    """What the admin site shows of a key: never its hash, never its OAuth token, never the full key.

    The limits carry the names `PATCH /admin/keys/{id}` takes; null means no limit.
    """

    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    rpm_limit: int | None
    concurrency_limit: int | None
    allowed_models: list[str] | None
    budget_usd: float | None
    budget_period: str | None
    token_health: TokenHealthPublic
    usage: UsagePublic

    @classmethod
    def of(cls, key: ApiKey, totals: UsageTotals | None, now: datetime) -> ApiKeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            status=key_status(key, now),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            expires_at=key.expires_at,
            rpm_limit=key.rpm_limit,
            concurrency_limit=key.concurrency_limit,
            allowed_models=None if key.allowed_models is None else list(key.allowed_models),
            budget_usd=key.budget_usd,
            budget_period=key.budget_period,
            token_health=TokenHealthPublic.of(key),
            usage=UsagePublic(
                requests=totals.requests if totals else 0,
                input_tokens=totals.input_tokens if totals else 0,
                output_tokens=totals.output_tokens if totals else 0,
                cost_usd=round(totals.cost_usd, 6) if totals else 0.0,
            ),
        )


class ApiKeyCreated(ApiKeyPublic):
    """The answer to an exchange: the key's record and, this once, the full key."""

    api_key: str


def key_status(key: ApiKey, now: datetime) -> Literal["active", "revoked", "expired"]:
    """Whether the key is usable at `now`, and if not, why."""
    if key.revoked_at is not None:
        return "revoked"
    if not key.is_active_at(now):
        return "expired"
    return "active"
