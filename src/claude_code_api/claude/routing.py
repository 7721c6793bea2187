"""Which upstream credential answers a request, and what each credential's answers say of its health.

A key runs on credentials in ranks. A new conversation goes to the healthy credential of the best rank
with the most headroom (the utilization Claude Code reports with every answer, from the subscription's
quota headers; among equals, the one chosen least recently). A conversation, a parked tool call and a
live process stay on their credential while it is healthy: the runner asks for them first.

A credential is taken out of rotation when its answers say so:
- a usage-limit refusal (429 with the unified status rejected) makes it exhausted until its reset, and
  the request moves to the next credential at once, before anything reached the client;
- an answer billed as extra usage (past a subscription's plan limit, `isUsingOverage`) makes it
  exhausted until its reset, unless the operator allowed extra usage on it: no money is spent silently;
- a 401 or 403 makes it broken until an operator replaces it; the request moves on;
- a plain 429, a 529 or a 5xx moves the request at most one hop, and leaves the credential as it is.

States are shared between instances through a `StateBoard` (the store, where every instance looks):
what one instance learns, the others follow within a second.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from claude_agent_sdk import RateLimitInfo

from claude_code_api.claude.failures import TOKEN_ADVICE
from claude_code_api.errors import (
    ClaudeUnavailableError,
    GatewayError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamRateLimitError,
    UsageLimitError,
)
from claude_code_api.upstream import UpstreamCredential

logger = logging.getLogger(__name__)

# The credential that answers the request of the current task, once the runner has chosen it.
answered_by: ContextVar[UpstreamCredential | None] = ContextVar("answered_by", default=None)

HealthState = Literal["ok", "exhausted", "broken"]
# How long a credential refused for a usage limit without a known reset stays out of rotation.
UNKNOWN_RESET_SECONDS = 300.0
# Plain upstream failures (429, 529, 5xx) move a request this many credentials at most.
PLAIN_FAILURE_HOPS = 1
# A credential rejected upstream (401, 403) is tried again after this long: an operator may have mended
# it, and a key with nothing else gets the rejection itself rather than a stale verdict.
BROKEN_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class CredentialHealth:
    """What the gateway knows of one credential: its state (until when), and its quota as last reported."""

    state: HealthState = "ok"
    until: float | None = None  # epoch seconds
    reason: str | None = None
    utilization: float = 0.0  # the fullest window's, 0..1
    quota: Mapping[str, str] = field(default_factory=dict)  # the unified quota headers, as last seen

    def usable(self, now: float) -> bool:
        return self.state == "ok" or (self.until is not None and self.until <= now)


StateBoard = Callable[[str, CredentialHealth], Awaitable[None]]


@dataclass(frozen=True)
class CredentialReport:
    """One credential as this instance sees it, for the dashboard, health and metrics: its health and
    how often it moved a request on or answered as extra usage."""

    name: str
    health: CredentialHealth
    failovers: int = 0
    extra_usage_events: int = 0

    def effective_state(self, now: float) -> HealthState:
        """The state routing acts on: a state whose time is up counts as ok."""
        return "ok" if self.health.usable(now) else self.health.state


class NoCredentialError(UsageLimitError):
    """Every credential of the key is out of rotation: retry after the soonest reset."""


class CredentialRouter:
    """Chooses credentials and follows their health; `publish` shares what it learns."""

    def __init__(self, publish: StateBoard | None = None, clock: Callable[[], float] = time.time) -> None:
        self._health: dict[str, CredentialHealth] = {}
        self._publish = publish
        self._clock = clock
        self._chosen_at: dict[str, int] = {}
        self._sequence = itertools.count(1)
        self.extra_usage_events: dict[str, int] = {}
        self.failovers: dict[str, int] = {}

    def health(self, name: str) -> CredentialHealth:
        return self._health.get(name, CredentialHealth())

    def snapshot(self) -> dict[str, CredentialReport]:
        """Every credential this instance knows of (the store's, followed every half second, and those
        it ran), with its health and counters; read-only."""
        names = set(self._health) | set(self.failovers) | set(self.extra_usage_events)
        return {
            name: CredentialReport(
                name,
                self.health(name),
                failovers=self.failovers.get(name, 0),
                extra_usage_events=self.extra_usage_events.get(name, 0),
            )
            for name in sorted(names)
        }

    def now(self) -> float:
        """The router's clock (epoch seconds)."""
        return self._clock()

    def adopt(self, states: Mapping[str, CredentialHealth]) -> None:
        """Takes the states other instances recorded (the quota this instance saw is kept)."""
        for name, shared in states.items():
            known = self.health(name)
            self._health[name] = replace(shared, utilization=known.utilization, quota=known.quota)

    def usable(self, credential: UpstreamCredential) -> bool:
        return self.health(credential.name).usable(self._clock())

    def choose(
        self,
        ranks: Iterable[Iterable[UpstreamCredential]],
        excluded: set[str],
        preferred: Collection[str] = frozenset(),
    ) -> UpstreamCredential:
        """The credential for a request: of the best rank with a usable one, one named in `preferred`
        (it holds the conversation), else the one with the most headroom, least recently chosen among equals.
        Raises NoCredentialError when none of the key's credentials is usable."""
        for rank in ranks:
            usable = [c for c in rank if c.name not in excluded and self.usable(c)]
            if not usable:
                continue
            held = [c for c in usable if c.name in preferred]
            chosen = held[0] if held else min(usable, key=self._load)
            self._chosen_at[chosen.name] = next(self._sequence)
            return chosen
        raise self._none_left(ranks)

    def _load(self, credential: UpstreamCredential) -> tuple[float, int]:
        return (self.health(credential.name).utilization, self._chosen_at.get(credential.name, 0))

    def has_another(self, ranks: Iterable[Iterable[UpstreamCredential]], excluded: set[str]) -> bool:
        """Whether a credential not yet tried could take the request."""
        return any(c.name not in excluded and self.usable(c) for rank in ranks for c in rank)

    def _none_left(self, ranks: Iterable[Iterable[UpstreamCredential]]) -> GatewayError:
        now = self._clock()
        states = {self.health(c.name).state for rank in ranks for c in rank}
        if states == {"broken"}:
            return UpstreamAuthenticationError(
                "Claude rejected every upstream credential of this API key: they are invalid, revoked or "
                f"expired. {TOKEN_ADVICE}"
            )
        resets = [
            health.until
            for rank in ranks
            for credential in rank
            if (health := self.health(credential.name)).state == "exhausted" and health.until
        ]
        wait = max(1.0, min(resets) - now) if resets else UNKNOWN_RESET_SECONDS
        return NoCredentialError(
            "Every upstream credential of this key is at its usage limit or out of service; "
            f"the soonest is back in {wait:.0f} s.",
            retry_after=wait,
        )

    async def observe(self, credential: UpstreamCredential, info: RateLimitInfo) -> None:
        """Records a rate-limit report that came with an answer: quota, and extra usage billed."""
        quota = quota_headers(info)
        windows = (info.raw or {}).get("unifiedWindows") or {}
        utilization = max(
            [float(w.get("utilization") or 0) for w in windows.values() if isinstance(w, dict)]
            + [float(info.utilization or 0)]
        )
        health = replace(self.health(credential.name), utilization=utilization, quota=quota)
        self._health[credential.name] = health
        using_overage = bool((info.raw or {}).get("isUsingOverage"))
        if using_overage and credential.kind == "subscription" and not credential.allow_extra_usage:
            self.extra_usage_events[credential.name] = self.extra_usage_events.get(credential.name, 0) + 1
            logger.warning(
                "Credential %s answered as extra usage past its plan limit; it takes no more requests "
                "until its reset (add it with --allow-extra-usage to allow this)",
                credential.name,
            )
            until = float(info.resets_at) if info.resets_at else self._clock() + UNKNOWN_RESET_SECONDS
            await self._set(credential, replace(health, state="exhausted", until=until, reason="extra usage"))

    async def failed(self, credential: UpstreamCredential, error: GatewayError, hops: int) -> bool:
        """Records what a failed run says of its credential; whether the request may move to another."""
        if isinstance(error, UsageLimitError):
            until = self._clock() + (error.retry_after or UNKNOWN_RESET_SECONDS)
            await self._set(
                credential,
                replace(self.health(credential.name), state="exhausted", until=until, reason="usage limit"),
            )
            return self._count_failover(credential)
        if isinstance(error, UpstreamAuthenticationError):
            until = self._clock() + BROKEN_RETRY_SECONDS
            await self._set(
                credential,
                replace(self.health(credential.name), state="broken", until=until, reason="rejected"),
            )
            return self._count_failover(credential)
        plain = (
            isinstance(error, UpstreamRateLimitError | ClaudeUnavailableError) or type(error) is UpstreamError
        )
        if plain and hops < PLAIN_FAILURE_HOPS:
            return self._count_failover(credential)
        return False

    def _count_failover(self, credential: UpstreamCredential) -> bool:
        self.failovers[credential.name] = self.failovers.get(credential.name, 0) + 1
        return True

    async def _set(self, credential: UpstreamCredential, health: CredentialHealth) -> None:
        self._health[credential.name] = health
        logger.info("Credential %s is now %s (%s)", credential.name, health.state, health.reason)
        if self._publish is not None:
            try:
                await self._publish(credential.name, health)
            except Exception:
                logger.warning(
                    "The state of credential %s could not be shared", credential.name, exc_info=True
                )


def quota_headers(info: RateLimitInfo) -> dict[str, str]:
    """The `anthropic-ratelimit-unified-*` headers a subscription's answer carried, rebuilt from Claude
    Code's report of them, so that Claude Code as a client keeps its quota display."""
    raw: dict[str, Any] = dict(info.raw or {})
    prefix = "anthropic-ratelimit-unified-"
    headers: dict[str, str] = {}
    if info.status:
        headers[prefix + "status"] = info.status
    if info.resets_at:
        headers[prefix + "reset"] = str(int(info.resets_at))
    if info.rate_limit_type:
        headers[prefix + "representative-claim"] = info.rate_limit_type
    if info.overage_status:
        headers[prefix + "overage-status"] = info.overage_status
    for window, values in (raw.get("unifiedWindows") or {}).items():
        short = {"five_hour": "5h", "seven_day": "7d"}.get(window)
        if short is None or not isinstance(values, dict):
            continue
        if values.get("utilization") is not None:
            headers[f"{prefix}{short}-utilization"] = str(values["utilization"])
        if values.get("resetsAt"):
            headers[f"{prefix}{short}-reset"] = str(int(values["resetsAt"]))
        if values.get("status"):
            headers[f"{prefix}{short}-status"] = str(values["status"])
    return headers
