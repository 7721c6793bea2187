"""GET /metrics and the access log, on a real gateway called with the official openai client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from claude_code_api.app import create_app
from claude_code_api.logs import configure_logging
from claude_code_api.security.certs import certs_dir, default_paths, generate_self_signed
from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, free_port, make_settings
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, Reply, Usage

METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(24)
CHAT = "/v1/chat/completions"
USAGE = Usage(input_tokens=21, output_tokens=7, cache_creation_input_tokens=2, cache_read_input_tokens=3)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def metered_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A gateway with METRICS_TOKEN set and one warm process per key and options."""
    settings = make_settings(
        tmp_path / "data", mock_anthropic.url, metrics_token=METRICS_TOKEN, warm_processes=1
    )
    with GatewayServer(settings) as server:
        yield server


def _client(server: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0)


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def scrape(url: str, token: str | None = METRICS_TOKEN, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=10, **kwargs)


def parse(exposition: str) -> Samples:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, _labels(**sample.labels))] = sample.value
    return found


def scrape_until(server: GatewayServer, ready: Callable[[Samples], bool]) -> Samples:
    """Scrapes until `ready`: a request is counted just after its last byte reaches the client."""
    deadline = time.monotonic() + 10
    while True:
        response = scrape(server.url)
        assert response.status_code == 200, response.text
        found = parse(response.text)
        if ready(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _answered(found: Samples) -> float:
    """Requests counted so far, scrapes left out."""
    return sum(
        value
        for (name, labels), value in found.items()
        if name == "claude_code_api_requests_total" and ("route", "/metrics") not in labels
    )


def test_chat_requests_are_counted_with_their_route_model_status_and_tokens(
    metered_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    mock_anthropic.always(Reply(text="Hello there", usage=USAGE))
    _, key = metered_gateway.create_key()
    client = _client(metered_gateway, key)
    messages: Any = [{"role": "user", "content": "Hi"}]

    raw = client.chat.completions.with_raw_response.create(model="sonnet", messages=messages)
    model = raw.parse().model
    cost = float(raw.headers["x-claude-cost-usd"])
    stream = client.chat.completions.create(model="sonnet", messages=messages, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Hello there"
    mock_anthropic.queue(ErrorReply(400, "invalid_request_error", "prompt is too long"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="sonnet", messages=messages)
    client.models.list()
    with pytest.raises(openai.AuthenticationError):
        _client(metered_gateway, "sk-" + "x" * 48).models.list()

    found = scrape_until(metered_gateway, lambda found: _answered(found) == 5)
    ok = _labels(route=CHAT, model=model, status="200")
    assert found[("claude_code_api_requests_total", ok)] == 2
    failed = [
        labels
        for name, labels in found
        if name == "claude_code_api_requests_total" and ("status", "400") in labels
    ]
    assert len(failed) == 1
    assert ("route", CHAT) in failed[0]
    assert found[("claude_code_api_requests_total", _labels(route="/v1/models", model="", status="200"))] == 1
    for kind, per_run in (("input", 21), ("output", 7), ("cache_write", 2), ("cache_read", 3)):
        assert found[("claude_code_api_tokens_total", _labels(model=model, type=kind))] == 2 * per_run
    assert found[("claude_code_api_cost_usd_total", _labels(model=model))] == pytest.approx(
        2 * cost, abs=2e-6
    )

    route = _labels(route=CHAT)
    assert found[("claude_code_api_request_duration_seconds_count", route)] == 3
    for phase in ("before_claude", "after_claude"):
        overhead = found[("claude_code_api_gateway_overhead_seconds_count", _labels(route=CHAT, phase=phase))]
        assert overhead == 3
    first_token = found[
        ("claude_code_api_time_to_first_token_seconds_count", _labels(route=CHAT, model=model))
    ]
    assert first_token == 2
    assert found[("claude_code_api_requests_in_flight", ())] == 1  # the scrape itself


def test_process_gauges_follow_the_runner(metered_gateway: GatewayServer) -> None:
    _, key = metered_gateway.create_key()
    _client(metered_gateway, key).chat.completions.create(
        model="haiku", messages=[{"role": "user", "content": "Hi"}]
    )
    gateway = metered_gateway.gateway
    assert gateway is not None
    deadline = time.monotonic() + 10
    # The process that answered is kept, and the spare started beside it is warm.
    while (settling := gateway.runner.stats()).idle < 1 or settling.starting:
        assert time.monotonic() < deadline, "no warm process was kept"
        time.sleep(0.02)
    stats = gateway.runner.stats()
    found = parse(scrape(metered_gateway.url).text)
    assert found[("claude_code_api_claude_processes", _labels(state="running"))] == stats.running
    assert found[("claude_code_api_claude_processes", _labels(state="idle"))] == stats.idle
    assert found[("claude_code_api_claude_queue_length", ())] == stats.queued
    assert found[("claude_code_api_claude_process_limit", ())] == stats.process_limit >= 1
    assert found[("claude_code_api_claude_processes_started_total", ())] == stats.started >= 1


# --- who may scrape --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}", "Bearer sk-" + "x" * 48],
    ids=["none", "wrong", "not-bearer", "api-key"],
)
def test_a_scrape_without_the_metrics_token_is_refused(
    metered_gateway: GatewayServer, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.get(f"{metered_gateway.url}/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "METRICS_TOKEN" in response.json()["error"]["message"]


def test_a_scrape_with_the_metrics_token_gets_the_text_format(metered_gateway: GatewayServer) -> None:
    response = scrape(metered_gateway.url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE claude_code_api_requests_total counter" in response.text


def test_without_a_metrics_token_the_api_port_refuses_a_scrape(gateway_server: GatewayServer) -> None:
    response = scrape(gateway_server.url, token=None)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "METRICS_TOKEN" in response.json()["error"]["message"]


@contextlib.contextmanager
def tls_listener(server: GatewayServer, data_dir: Path) -> Iterator[tuple[str, Path]]:
    """The same gateway served over HTTPS on another port, as `serve` serves the admin site."""
    generate_self_signed(certs_dir(data_dir))
    cert, key = default_paths(data_dir)
    port = free_port()
    app = create_app(server.settings, server.gateway)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key, log_config=None
    )
    listener = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(listener.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not listener.started:
        assert thread.is_alive(), "the HTTPS listener failed to start"
        assert time.monotonic() < deadline, "the HTTPS listener did not start in time"
        time.sleep(0.01)
    try:
        yield f"https://localhost:{port}", cert
    finally:
        listener.should_exit = True
        thread.join(10)


def test_without_a_metrics_token_the_https_listener_serves_a_scrape(
    gateway_server: GatewayServer, tmp_path: Path
) -> None:
    with tls_listener(gateway_server, tmp_path / "tls") as (url, cert):
        response = scrape(url, token=None, verify=ssl.create_default_context(cafile=cert))
    assert response.status_code == 200
    assert "claude_code_api_requests_in_flight 1.0" in response.text


def test_a_trusted_tls_proxy_forward_counts_as_the_https_listener(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, trust_proxy_headers=True)
    server = GatewayServer(settings).start()
    try:
        forwarded = httpx.get(f"{server.url}/metrics", headers={"x-forwarded-proto": "https"})
        direct = httpx.get(f"{server.url}/metrics")
    finally:
        server.stop()
    assert forwarded.status_code == 200
    assert direct.status_code == 403


# --- the access log --------------------------------------------------------------------------------


@contextlib.contextmanager
def captured_logs(json_lines: bool) -> Iterator[io.StringIO]:
    """The process's logging as `serve` configures it, written to a buffer; restored afterwards."""
    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [(root, list(root.handlers), root.level, root.propagate)]
    saved += [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in map(logging.getLogger, names)]
    buffer = io.StringIO()
    configure_logging("DEBUG", json_lines)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def wait_for(buffer: io.StringIO, text: str, count: int = 1) -> str:
    """The log so far once `text` is in it `count` times.

    A request is logged after its last byte, and a stream's last byte comes after `[DONE]`, once
    the Claude process is released: a client that stops reading at `[DONE]` moves on before that.
    """
    deadline = time.monotonic() + 10
    while buffer.getvalue().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} logged fewer than {count} times"
        time.sleep(0.02)
    return buffer.getvalue()


def test_a_request_writes_one_json_access_line_with_its_request_id(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    record, key = gateway_server.create_key()
    with captured_logs(json_lines=True) as buffer:
        raw = _client(gateway_server, key).chat.completions.with_raw_response.create(
            model="sonnet", messages=[{"role": "user", "content": "Hi"}]
        )
        request_id = raw.headers["x-request-id"]
        log = wait_for(buffer, '"logger":"claude_code_api.access"')
    entries = [json.loads(line) for line in log.splitlines()]
    access = [entry for entry in entries if entry["logger"] == "claude_code_api.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == request_id
    assert line["method"] == "POST"
    assert line["path"] == CHAT
    assert line["status"] == 200
    assert line["key_id"] == record.id
    assert line["model"] == raw.parse().model
    assert line["duration_ms"] >= line["first_token_ms"] > 0
    assert 0 <= line["overhead_ms"] <= line["duration_ms"]
    assert all(entry["request_id"] == request_id for entry in entries if entry["logger"].startswith("claude"))
    assert not [entry for entry in entries if entry["logger"].startswith("uvicorn")]


def test_a_text_access_line_carries_the_request_id(gateway_server: GatewayServer) -> None:
    record, key = gateway_server.create_key()
    with captured_logs(json_lines=False) as buffer:
        response = httpx.get(f"{gateway_server.base_url}/models", headers={"authorization": f"Bearer {key}"})
        log = wait_for(buffer, "GET /v1/models 200")
    request_id = response.headers["x-request-id"]
    (line,) = [line for line in log.splitlines() if "claude_code_api.access" in line]
    assert f"[{request_id}]" in line
    assert f"key={record.id} model=-" in line


def test_no_api_key_or_oauth_token_reaches_the_log(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    oauth_token = make_oauth_token()
    _, key = gateway_server.create_key(oauth_token=oauth_token)
    unknown_key = "sk-" + secrets.token_urlsafe(36)
    with captured_logs(json_lines=True) as buffer:
        client = _client(gateway_server, key)
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "Hi"}])
        stream = client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        for _ in stream:
            pass
        with pytest.raises(openai.AuthenticationError):
            _client(gateway_server, unknown_key).models.list()
        httpx.get(f"{gateway_server.base_url}/models/{key}", headers={"authorization": f"Bearer {key}"})
        log = wait_for(buffer, '"logger":"claude_code_api.access"', count=4)
    assert mock_anthropic.message_requests[0].bearer_token == oauth_token  # the token did travel
    assert "GET /v1/models/sk-<redacted> 404" in log
    for secret in (key, oauth_token, unknown_key):
        assert secret not in log
        assert secret[-20:] not in log
