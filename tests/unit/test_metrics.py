"""Tests of metrics.py: the series a run and a request add, the runner gauges, the credentials' series,
one registry per app."""

from __future__ import annotations

import dataclasses
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from claude_code_api.answer.events import ClaudeUsage, RunReport
from claude_code_api.claude.routing import CredentialHealth, CredentialReport
from claude_code_api.claude.runner import RunnerStats
from claude_code_api.metrics import GatewayMetrics

STATS = RunnerStats(
    running=3,
    idle=2,
    parked=1,
    starting=0,
    queued=5,
    waiting_for_cpu=6,
    process_limit=8,
    started=11,
    reused=7,
    resets=4,
    parks=2,
    resumes=1,
    cpu_waits=9,
)
USAGE = ClaudeUsage(input_tokens=21, output_tokens=7, cache_creation_tokens=2, cache_read_tokens=3)


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels, parsed back from the text."""
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_run_adds_its_tokens_by_type_and_its_cost() -> None:
    metrics = GatewayMetrics(lambda: None)
    metrics.observe_run(RunReport(200, "claude-sonnet-4-5", USAGE, 0.25, 120.0, 400.0))
    metrics.observe_run(RunReport(200, "claude-sonnet-4-5", USAGE, 0.5, 80.0, 300.0))
    found = samples(metrics)
    model = ("model", "claude-sonnet-4-5")
    for kind, per_run in (("input", 21), ("output", 7), ("cache_write", 2), ("cache_read", 3)):
        assert found[("claude_code_api_tokens_total", (model, ("type", kind)))] == 2 * per_run
    assert found[("claude_code_api_cost_usd_total", (model,))] == 0.75
    ok = (model, ("status", "200"))
    assert found[("claude_code_api_claude_run_duration_seconds_count", ok)] == 2
    assert found[("claude_code_api_claude_run_duration_seconds_sum", ok)] == pytest.approx(0.7)


def test_a_request_without_claude_counts_only_its_duration() -> None:
    metrics = GatewayMetrics(lambda: None)
    metrics.observe_request(
        route="/v1/models",
        model="",
        status=401,
        duration=0.002,
        before_claude=None,
        after_claude=None,
        first_token=None,
    )
    found = samples(metrics)
    labels = (("model", ""), ("route", "/v1/models"), ("status", "401"))
    assert found[("claude_code_api_requests_total", labels)] == 1
    assert found[("claude_code_api_request_duration_seconds_count", (("route", "/v1/models"),))] == 1
    assert not [name for name, _ in found if name.startswith("claude_code_api_gateway_overhead")]
    assert not [name for name, _ in found if name.startswith("claude_code_api_time_to_first_token")]


def test_a_request_with_claude_splits_its_overhead_into_phases() -> None:
    metrics = GatewayMetrics(lambda: None)
    metrics.observe_request(
        route="/v1/chat/completions",
        model="claude-haiku-4-5",
        status=200,
        duration=0.5,
        before_claude=0.004,
        after_claude=0.001,
        first_token=0.2,
    )
    found = samples(metrics)
    route = ("route", "/v1/chat/completions")
    overhead = "claude_code_api_gateway_overhead_seconds_sum"
    assert found[(overhead, (("phase", "before_claude"), route))] == 0.004
    assert found[(overhead, (("phase", "after_claude"), route))] == 0.001
    ttft = ("claude_code_api_time_to_first_token_seconds_sum", (("model", "claude-haiku-4-5"), route))
    assert found[ttft] == 0.2


def test_the_runner_gauges_are_read_at_scrape_time() -> None:
    current = [STATS]
    metrics = GatewayMetrics(lambda: current[0])
    found = samples(metrics)
    assert found[("claude_code_api_claude_processes", (("state", "running"),))] == 3
    assert found[("claude_code_api_claude_processes", (("state", "idle"),))] == 2
    assert found[("claude_code_api_claude_processes", (("state", "parked"),))] == 1
    assert found[("claude_code_api_claude_process_reuses_total", ())] == 7
    assert found[("claude_code_api_claude_conversation_resets_total", ())] == 4
    assert found[("claude_code_api_claude_tool_call_parks_total", ())] == 2
    assert found[("claude_code_api_claude_tool_call_resumes_total", ())] == 1
    assert found[("claude_code_api_claude_queue_length", ())] == 5
    assert found[("claude_code_api_claude_turns_waiting_for_cpu", ())] == 6
    assert found[("claude_code_api_claude_cpu_waits_total", ())] == 9
    assert found[("claude_code_api_claude_process_limit", ())] == 8
    assert found[("claude_code_api_claude_processes_started_total", ())] == 11
    current[0] = dataclasses.replace(STATS, queued=0)
    assert samples(metrics)[("claude_code_api_claude_queue_length", ())] == 0


def test_without_a_runner_there_are_no_process_gauges() -> None:
    found = samples(GatewayMetrics(lambda: None))
    assert not [name for name, _ in found if "claude_process" in name or "queue" in name]


def test_each_instance_has_its_own_registry() -> None:
    first, second = GatewayMetrics(lambda: None), GatewayMetrics(lambda: None)
    first.in_flight.inc()
    assert samples(first)[("claude_code_api_requests_in_flight", ())] == 1
    assert samples(second)[("claude_code_api_requests_in_flight", ())] == 0


def test_no_created_series_are_exported() -> None:
    metrics = GatewayMetrics(lambda: None)
    metrics.observe_run(RunReport(200, "claude-sonnet-4-5", USAGE, 0.25, 120.0, 400.0))
    assert b"_created" not in metrics.render()


def test_a_run_counts_under_the_credential_that_answered_it() -> None:
    metrics = GatewayMetrics(lambda: None)
    metrics.observe_run(RunReport(200, "claude-sonnet-4-5", USAGE, 0.25, 120.0, 400.0), "team-console")
    metrics.observe_run(RunReport(429, "claude-sonnet-4-5", ClaudeUsage(), None, 0.0, 50.0), "team-console")
    metrics.observe_run(RunReport(200, "claude-sonnet-4-5", USAGE, 0.25, 120.0, 400.0))
    found = samples(metrics)
    console = ("credential", "team-console")
    assert found[("claude_code_api_credential_requests_total", (console, ("status", "200")))] == 1
    assert found[("claude_code_api_credential_requests_total", (console, ("status", "429")))] == 1
    assert found[("claude_code_api_credential_tokens_total", (console, ("type", "input")))] == 21
    assert found[("claude_code_api_credential_tokens_total", (console, ("type", "output")))] == 7
    assert not [
        labels for name, labels in found if name.startswith("claude_code_api_credential") and not labels
    ]


def test_credential_states_and_counters_are_read_at_scrape_time() -> None:
    now = time.time()
    reports = {
        "fresh": CredentialReport("fresh", CredentialHealth()),
        "full": CredentialReport(
            "full",
            CredentialHealth("exhausted", now + 600, "extra usage", utilization=1.0),
            failovers=2,
            extra_usage_events=1,
        ),
        "rejected": CredentialReport("rejected", CredentialHealth("broken", now + 60, "rejected")),
        "mended": CredentialReport("mended", CredentialHealth("exhausted", now - 1, "usage limit")),
    }
    found = samples(GatewayMetrics(lambda: None, lambda: reports))
    state = "claude_code_api_credential_state"
    assert {name: found[(state, (("credential", name),))] for name in reports} == {
        "fresh": 0,
        "full": 1,
        "rejected": 2,
        "mended": 0,
    }
    full = (("credential", "full"),)
    assert found[("claude_code_api_credential_utilization", full)] == 1.0
    assert found[("claude_code_api_credential_failovers_total", full)] == 2
    assert found[("claude_code_api_credential_extra_usage_events_total", full)] == 1
    assert found[("claude_code_api_credential_failovers_total", (("credential", "fresh"),))] == 0


def test_without_a_gateway_there_are_no_credential_gauges() -> None:
    found = samples(GatewayMetrics(lambda: None))
    assert ("claude_code_api_credential_state", ()) not in found
    assert not [name for name, _ in found if name == "claude_code_api_credential_state"]
