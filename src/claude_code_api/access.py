"""One record per HTTP request (its timing, caller, status and Claude runs), written as one access log
line and into the metrics.

`AccessMiddleware` opens the record when a request arrives and closes it after the response's last
byte. Routes add what only they know with `note_caller` and `note_run`. The gateway's overhead is the
time of a request outside Claude: from arrival to the first run's start (reading, authenticating,
validating, translating, waiting for a process) and from the last run's result to the last byte
(ending or parking the process, the last chunks). Translating chunks while Claude answers overlaps
with Claude's own time and is not counted.
"""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claude_code_api.answer.events import RunReport
from claude_code_api.metrics import UNMATCHED_ROUTE, GatewayMetrics
from claude_code_api.security.redaction import redact

logger = logging.getLogger("claude_code_api.access")


@dataclass(frozen=True)
class ObservedRun:
    """A Claude run's report and the moment (monotonic seconds) the route received it."""

    report: RunReport
    reported_at: float
    credential: str | None = None  # the upstream credential's name that answered, when one did

    @property
    def started_at(self) -> float:
        return self.reported_at - self.report.total_ms / 1000


@dataclass
class AccessRecord:
    """What is known about one request; times are `time.monotonic()` seconds."""

    method: str
    path: str
    arrived_at: float
    status: int = 500
    route: str = UNMATCHED_ROUTE
    key_id: str | None = None
    runs: list[ObservedRun] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The Claude model of the last run, or "" when none ran."""
        return self.runs[-1].report.model if self.runs else ""

    def duration(self, ended_at: float) -> float:
        """Arrival to the last byte."""
        return max(0.0, ended_at - self.arrived_at)

    def before_claude(self) -> float | None:
        """Arrival to the first Claude run's start, or None when Claude did not run."""
        if not self.runs:
            return None
        return max(0.0, self.runs[0].started_at - self.arrived_at)

    def after_claude(self, ended_at: float) -> float | None:
        """The last Claude run's result (or failure) to the last byte, or None when Claude did not run."""
        if not self.runs:
            return None
        return max(0.0, ended_at - self.runs[-1].reported_at)

    def first_token(self) -> float | None:
        """Arrival to the first run's first text or tool-call delta, or None without one."""
        before = self.before_claude()
        if before is None or self.runs[0].report.first_token_ms is None:
            return None
        return before + self.runs[0].report.first_token_ms / 1000


_current: contextvars.ContextVar[AccessRecord | None] = contextvars.ContextVar("access_record", default=None)


def note_caller(key_id: str) -> None:
    """Names the API key (its public id) that made the current request."""
    record = _current.get()
    if record is not None:
        record.key_id = key_id


def note_run(report: RunReport, credential: str | None = None) -> None:
    """Adds a Claude run to the current request, and the name of the credential that answered it;
    call it as soon as the run reports."""
    reported_at = time.monotonic()
    record = _current.get()
    if record is not None:
        record.runs.append(ObservedRun(report, reported_at, credential))


class AccessMiddleware:
    """Times each HTTP request, then logs it on one line and counts it in `metrics`."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Only the path: a query string may carry anything, and a path segment may be a pasted key.
        record = AccessRecord(scope["method"], redact(scope["path"]), time.monotonic())
        token = _current.set(record)

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            ended_at = time.monotonic()
            self.metrics.in_flight.dec()
            _current.reset(token)
            route = scope.get("route")
            record.route = getattr(route, "path", None) or UNMATCHED_ROUTE
            self._finish(record, ended_at)

    def _finish(self, record: AccessRecord, ended_at: float) -> None:
        for run in record.runs:
            self.metrics.observe_run(run.report, run.credential)
        duration = record.duration(ended_at)
        before, after = record.before_claude(), record.after_claude(ended_at)
        first_token = record.first_token()
        self.metrics.observe_request(
            route=record.route,
            model=record.model,
            status=record.status,
            duration=duration,
            before_claude=before,
            after_claude=after,
            first_token=first_token,
        )
        fields: dict[str, Any] = {
            "method": record.method,
            "path": record.path,
            "status": record.status,
            "duration_ms": _ms(duration),
            "key_id": record.key_id,
            "model": record.model or None,
        }
        if before is not None and after is not None:
            fields["overhead_ms"] = _ms(before + after)
        if first_token is not None:
            fields["first_token_ms"] = _ms(first_token)
        logger.info(
            "%s %s %d %.1fms key=%s model=%s",
            record.method,
            record.path,
            record.status,
            fields["duration_ms"],
            record.key_id or "-",
            record.model or "-",
            extra={"fields": fields},
        )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
