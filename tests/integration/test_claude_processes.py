"""The Claude Code processes behind the API: none outlives its run, and none sees what it should not.

Each request is answered by a real CLI (through claude-agent-sdk) talking to the mock upstream. These
tests check that a process mid-answer ends with its request however the request ends (the client goes
away, Claude stalls) and that none outlives the gateway; that the upstream is offered no tools and
learns nothing of the server (its data directory, its working directory, a key's OAuth token outside
the `Authorization` header); and that no secret reaches the logs or a response.

The gateway may keep idle processes warm between requests, so "the process that was answering" is
told apart from warm ones by what only it has: a connection to the upstream.

The other test files of this folder import the autouse fixtures below, so every test checks that no
run is left answering and that no Claude process outlives it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import psutil
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, Reply

PROMPT = [{"role": "user", "content": "Say hello"}]


def claude_children() -> list[psutil.Process]:
    """The Claude Code processes this test process started (other test runs may share the machine)."""
    mine = {child.pid for child in psutil.Process().children(recursive=True)}
    return [process for process in claude_processes() if process.pid in mine]


def talking_to(port: int) -> list[psutil.Process]:
    """Our Claude processes with a connection open to 127.0.0.1:`port`: those answering a request."""
    found = []
    for process in claude_children():
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.raddr and c.raddr.port == port and c.status == "ESTABLISHED" for c in connections):
            found.append(process)
    return found


def eventually(condition: Callable[[], bool], within: float) -> bool:
    """Polls `condition` every 20 ms for up to `within` seconds; returns whether it came true."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def all_gone(processes: list[psutil.Process]) -> bool:
    """Whether every one of these processes has exited (a zombie has, it only awaits its reaping)."""
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def answering_runs(server: GatewayServer) -> int:
    assert server.gateway is not None
    return server.gateway.runner.active_runs


@pytest.fixture(autouse=True)
def no_claude_process_outlives_the_test() -> Iterator[None]:
    """Set up first, so checked last: once every gateway of the test has stopped, no Claude is left."""
    yield
    assert eventually(lambda: not claude_children(), within=2.0), claude_children()


@pytest.fixture(autouse=True)
def no_run_left_answering(gateway_server: GatewayServer) -> Iterator[None]:
    """While the gateway still runs, no Claude process is left answering once the test is done."""
    yield
    assert eventually(lambda: answering_runs(gateway_server) == 0, within=1.0)


@pytest.fixture
def quick_idle_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A gateway that ends a run after 1.5 s without output once Claude has started answering."""
    settings = make_settings(tmp_path / "idle-data", mock_anthropic.url, idle_timeout=1.5)
    with GatewayServer(settings) as server:
        yield server


# --- no process outlives its run -----------------------------------------------------------------


def test_client_that_disconnects_mid_stream_leaves_no_claude_process(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic
) -> None:
    # 50 deltas 0.1 s apart: the answer would take 5 s; the client leaves after the first word.
    mock_anthropic.queue(Reply(text="word " * 40, chunk_size=4, delay=0.1))
    body = {"model": "sonnet", "stream": True, "messages": PROMPT}
    headers = {"Authorization": f"Bearer {api_key}"}

    with (
        httpx.Client(base_url=gateway_server.base_url, headers=headers, timeout=30) as http,
        http.stream("POST", "/chat/completions", json=body) as stream,
    ):
        assert stream.status_code == 200
        # Held by name: a line iterator dropped at `break` is closed at once, and the client with it.
        lines = stream.iter_lines()
        for line in lines:
            if '"content":"word' in line:
                break
        # The process list is read from /proc: on a busy machine the connection can show a moment late.
        assert eventually(lambda: len(talking_to(mock_anthropic.port)) == 1, within=2.0)
        answering = talking_to(mock_anthropic.port)
    left_at = time.monotonic()

    assert eventually(lambda: all_gone(answering), within=1.0)
    assert time.monotonic() - left_at < 1.0
    assert eventually(lambda: answering_runs(gateway_server) == 0, within=1.0)


def test_stream_that_stalls_mid_answer_ends_with_an_error_event_and_its_process(
    quick_idle_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    # Claude Code's own idle watchdog waits 300 s: the gateway's idle deadline must end the run.
    mock_anthropic.queue(Reply(text="Hello there, general", chunk_size=4, stall_after=2))
    _, key = quick_idle_gateway.create_key()
    received: list[str] = []

    def read(stream: openai.Stream[ChatCompletionChunk]) -> None:
        for chunk in stream:
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    with openai.OpenAI(api_key=key, base_url=quick_idle_gateway.base_url, max_retries=0) as stalled:
        stream = stalled.chat.completions.create(model="sonnet", messages=PROMPT, stream=True)
        answering = talking_to(mock_anthropic.port)
        assert len(answering) == 1
        with pytest.raises(openai.APIError) as raised:
            read(stream)

    assert "".join(received) == "Hello th"
    assert raised.value.code == "upstream_timeout"
    assert eventually(lambda: all_gone(answering), within=1.0)
    assert eventually(lambda: answering_runs(quick_idle_gateway) == 0, within=1.0)


def test_gateway_that_stops_ends_every_claude_process(tmp_path: Path, mock_anthropic: MockAnthropic) -> None:
    server = GatewayServer(make_settings(tmp_path / "stopping", mock_anthropic.url)).start()
    try:
        _, key = server.create_key()
        with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as stopping:
            stopping.chat.completions.create(model="sonnet", messages=PROMPT)
        started = claude_children()  # warm processes the gateway keeps, if it keeps any
    finally:
        server.stop()

    assert eventually(lambda: all_gone(started), within=1.0)


# --- what the upstream is given ------------------------------------------------------------------


def test_upstream_is_offered_no_tools(client: openai.OpenAI, mock_anthropic: MockAnthropic) -> None:
    client.chat.completions.create(model="sonnet", messages=PROMPT)

    body = mock_anthropic.last_request.body
    # CLI 2.1.331 sends `"tools": []`; what matters is that no tool (Bash, Read, ...) is defined.
    assert not body.get("tools")


def test_upstream_learns_nothing_of_the_server(
    gateway_server: GatewayServer, api_key: str, mock_anthropic: MockAnthropic
) -> None:
    oauth_token = make_oauth_token()
    _, other_key = gateway_server.create_key("other", oauth_token)
    messages = [{"role": "system", "content": "Be brief."}, *PROMPT]
    with openai.OpenAI(api_key=other_key, base_url=gateway_server.base_url, max_retries=0) as other:
        other.chat.completions.create(model="sonnet", messages=messages)

    request = mock_anthropic.last_request
    sent = request.content.decode()
    data_dir = gateway_server.settings.data_dir
    assert request.bearer_token == oauth_token
    for secret in (oauth_token, other_key, api_key):
        assert secret not in sent
    for path in {str(data_dir), str(data_dir.resolve()), str(Path.cwd())}:
        assert path not in sent


# --- secrets stay out of logs and responses ------------------------------------------------------


def test_logs_of_a_run_hold_no_secret(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    oauth_token = make_oauth_token()
    _, key = gateway_server.create_key("logged", oauth_token)
    mock_anthropic.queue(Reply(text="Fine."), Reply(text="Fine again."))
    mock_anthropic.always(ErrorReply.unauthorized())

    with openai.OpenAI(api_key=key, base_url=gateway_server.base_url, max_retries=0) as logged:
        logged.chat.completions.create(model="sonnet", messages=PROMPT)
        list(logged.chat.completions.create(model="sonnet", messages=PROMPT, stream=True))
        with pytest.raises(openai.APIStatusError):
            logged.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "Again"}])
    with (
        openai.OpenAI(api_key=key + "x", base_url=gateway_server.base_url, max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError),
    ):
        wrong.models.list()

    # The gateway's own records of the runs, the failed one included, were captured.
    assert any(r.name.startswith("claude_code_api") and r.levelno >= logging.WARNING for r in caplog.records)
    logged_text = caplog.text + "".join(record.getMessage() for record in caplog.records)
    for secret in (oauth_token, key):
        assert secret not in logged_text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses_never_contain_the_oauth_token(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic, stream: bool
) -> None:
    oauth_token = make_oauth_token()
    _, key = gateway_server.create_key("echoed", oauth_token)
    mock_anthropic.queue(Reply(text="A token starts with sk-ant-oat01-"))
    mock_anthropic.always(ErrorReply.unauthorized())
    headers = {"Authorization": f"Bearer {key}"}

    answer = {"model": "sonnet", "stream": stream, "messages": PROMPT}
    again = {**answer, "messages": [{"role": "user", "content": "Again"}]}

    with httpx.Client(base_url=gateway_server.base_url, headers=headers, timeout=30) as http:
        answered = http.post("/chat/completions", json=answer)
        refused = http.post("/chat/completions", json=again)

    assert answered.status_code == 200
    assert refused.status_code == 502
    for response in (answered, refused):
        assert oauth_token not in response.text
        assert oauth_token not in json.dumps(dict(response.headers))
