"""Prometheus counters and histograms of the gateway, on a registry of each app's own; no logic.

`access.py` feeds them once per request; the Claude process gauges and the upstream credentials' states
are read from the runner and its router when `/metrics` is scraped. Credentials are labelled by their
name, never by anything secret. A registry per app (not prometheus_client's global one) lets a process, or a
test, build several apps without their series mixing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from claude_code_api import __version__
from claude_code_api.answer.events import RunReport
from claude_code_api.claude.routing import CredentialReport
from claude_code_api.claude.runner import RunnerStats

NAMESPACE = "claude_code_api"

# The classic text format every Prometheus version and agent reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# The gateway's own share of a request: sub-millisecond when healthy, so fine buckets at the bottom.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Whole requests and first tokens: a warm process answers in tens of milliseconds, a new one in
# about half a second, a long answer in minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

UNMATCHED_ROUTE = "unmatched"
# The credential state gauge's values.
STATE_VALUES = {"ok": 0, "exhausted": 1, "broken": 2}


class GatewayMetrics:
    """Every series the gateway exports, registered on `registry`."""

    def __init__(
        self,
        runner_stats: Callable[[], RunnerStats | None],
        credentials: Callable[[], Mapping[str, CredentialReport] | None] = lambda: None,
    ) -> None:
        # A `_created` twin of every counter and histogram doubles the series for no use to Prometheus,
        # which reads resets from the values. The switch is process-wide; the gateway owns its process.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client
        self.registry = CollectorRegistry()
        registry = self.registry
        Info("build", "The gateway's version.", namespace=NAMESPACE, registry=registry).info(
            {"version": __version__}
        )
        self.requests = Counter(
            "requests",
            "HTTP requests answered, by route template, Claude model that ran (empty when none) and status.",
            ["route", "model", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.in_flight = Gauge(
            "requests_in_flight",
            "HTTP requests received and not yet answered to their last byte.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.request_duration = Histogram(
            "request_duration_seconds",
            "From the request's arrival to its response's last byte.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            namespace=NAMESPACE,
            registry=registry,
        )
        self.gateway_overhead = Histogram(
            "gateway_overhead_seconds",
            "Of a request that ran Claude, the time outside Claude: phase before_claude is arrival to "
            "the run's start (reading, authenticating, validating, translating, waiting for a process); "
            "after_claude is Claude's result to the last byte (ending or parking the process, last chunks).",
            ["route", "phase"],
            buckets=OVERHEAD_BUCKETS,
            namespace=NAMESPACE,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "time_to_first_token_seconds",
            "From the request's arrival to Claude's first text or tool-call delta.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            namespace=NAMESPACE,
            registry=registry,
        )
        self.claude_run_duration = Histogram(
            "claude_run_duration_seconds",
            "From handing the request to the runner to Claude's result (or failure).",
            ["model", "status"],
            buckets=LATENCY_BUCKETS,
            namespace=NAMESPACE,
            registry=registry,
        )
        self.tokens = Counter(
            "tokens",
            "Tokens reported by Claude, by model and type (input, output, cache_read, cache_write).",
            ["model", "type"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.cost = Counter(
            "cost_usd",
            "List-price cost in US dollars that Claude Code reports for its runs.",
            ["model"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.credential_requests = Counter(
            "credential_requests",
            "Claude runs answered (or failed last) on each upstream credential, by its name and status.",
            ["credential", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.credential_tokens = Counter(
            "credential_tokens",
            "Tokens reported by Claude, by upstream credential name and type "
            "(input, output, cache_read, cache_write).",
            ["credential", "type"],
            namespace=NAMESPACE,
            registry=registry,
        )
        registry.register(_RunnerCollector(runner_stats))
        registry.register(_CredentialCollector(credentials))

    def observe_run(self, run: RunReport, credential: str | None = None) -> None:
        """Counts one Claude run's duration, tokens and cost, and under `credential` (the name of the
        upstream credential that answered it) its request and tokens."""
        self.claude_run_duration.labels(run.model, str(run.status)).observe(run.total_ms / 1000)
        usage = run.usage
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_creation_tokens),
        ):
            self.tokens.labels(run.model, kind).inc(count)
            if credential:
                self.credential_tokens.labels(credential, kind).inc(count)
        if credential:
            self.credential_requests.labels(credential, str(run.status)).inc()
        if run.cost_usd:
            self.cost.labels(run.model).inc(run.cost_usd)

    def observe_request(
        self,
        *,
        route: str,
        model: str,
        status: int,
        duration: float,
        before_claude: float | None,
        after_claude: float | None,
        first_token: float | None,
    ) -> None:
        """Counts one answered request; times are in seconds, None where no Claude run took place."""
        self.requests.labels(route, model, str(status)).inc()
        self.request_duration.labels(route).observe(duration)
        if before_claude is not None:
            self.gateway_overhead.labels(route, "before_claude").observe(before_claude)
        if after_claude is not None:
            self.gateway_overhead.labels(route, "after_claude").observe(after_claude)
        if first_token is not None:
            self.time_to_first_token.labels(route, model).observe(first_token)

    def render(self) -> bytes:
        """Every series in Prometheus's text format (CONTENT_TYPE)."""
        return generate_latest(self.registry)


class _RunnerCollector:
    """The runner's process counts, read at scrape time so they are never stale."""

    def __init__(self, runner_stats: Callable[[], RunnerStats | None]) -> None:
        self._runner_stats = runner_stats

    def collect(self) -> Iterable[Metric]:
        stats = self._runner_stats()
        if stats is None:
            return
        processes = GaugeMetricFamily(
            f"{NAMESPACE}_claude_processes",
            "Claude Code processes: running a request, idle in the pool, parked inside a client's "
            "function calls, or starting.",
            labels=["state"],
        )
        for state in ("running", "idle", "parked", "starting"):
            processes.add_metric([state], getattr(stats, state))
        yield processes
        yield GaugeMetricFamily(
            f"{NAMESPACE}_claude_queue_length",
            "Requests waiting for a Claude process because the process limit is reached.",
            value=stats.queued,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_claude_turns_waiting_for_cpu",
            "Turns waiting to start because the turns running want every CPU (2 per core).",
            value=stats.waiting_for_cpu,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_claude_process_limit",
            "Most Claude Code processes alive at once (running, idle or starting).",
            value=stats.process_limit,
        )
        for name, value, what in (
            ("processes_started", stats.started, "Claude Code processes started, spares included."),
            ("process_reuses", stats.reused, "Requests answered by a live process that had answered before."),
            ("conversation_resets", stats.resets, "Exchanges rewound out of live processes' conversations."),
            ("cpu_waits", stats.cpu_waits, "Turns that waited for a CPU before they started."),
            (
                "tool_call_parks",
                stats.parks,
                "Answers that ended at client function calls, their process waiting.",
            ),
            (
                "tool_call_resumes",
                stats.resumes,
                "Requests whose tool results went to the process waiting for them.",
            ),
        ):
            yield CounterMetricFamily(f"{NAMESPACE}_claude_{name}", what, value=value)


class _CredentialCollector:
    """Each upstream credential's state, utilization and counters as this instance's router knows them,
    read at scrape time."""

    def __init__(self, credentials: Callable[[], Mapping[str, CredentialReport] | None]) -> None:
        self._credentials = credentials

    def collect(self) -> Iterable[Metric]:
        reports = self._credentials()
        if reports is None:
            return
        now = time.time()
        state = GaugeMetricFamily(
            f"{NAMESPACE}_credential_state",
            "Each upstream credential's state as routing acts on it: 0 ok, 1 exhausted, 2 broken.",
            labels=["credential"],
        )
        utilization = GaugeMetricFamily(
            f"{NAMESPACE}_credential_utilization",
            "The fullest quota window's utilization (0..1) a subscription last reported.",
            labels=["credential"],
        )
        failovers = CounterMetricFamily(
            f"{NAMESPACE}_credential_failovers",
            "Requests that moved from this credential to another (usage limit, rejection, plain failure).",
            labels=["credential"],
        )
        extra_usage = CounterMetricFamily(
            f"{NAMESPACE}_credential_extra_usage_events",
            "Answers billed as extra usage past a subscription's plan limit without the operator's consent.",
            labels=["credential"],
        )
        for name, report in reports.items():
            state.add_metric([name], STATE_VALUES[report.effective_state(now)])
            utilization.add_metric([name], report.health.utilization)
            failovers.add_metric([name], report.failovers)
            extra_usage.add_metric([name], report.extra_usage_events)
        yield from (state, utilization, failovers, extra_usage)
