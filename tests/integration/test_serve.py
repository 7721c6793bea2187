"""`claude-code-api serve` as a user starts it: configuration errors, keys, a stream, and SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import psutil
import pytest

from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.gateway_harness import free_port
from tests.integration.mock_anthropic import MockAnthropic, Reply

CLI = shutil.which("claude-code-api") or str(Path(__file__).parents[2] / ".venv" / "bin" / "claude-code-api")


@dataclass
class Served:
    process: subprocess.Popen[str]
    env: dict[str, str]
    run_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}/v1"


def _environment(tmp_path: Path, upstream: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "RUN_DIR": str(tmp_path / "run"),
            "PORT": str(free_port()),
            "HTTPS_PORT": str(free_port()),
            "ANTHROPIC_BASE_URL": upstream,
            "ADMIN_PASSWORD": "a-test-password",
            "UPSTREAM_MAX_RETRIES": "0",
        }
    )
    return env


def _claude_processes_under(run_dir: Path) -> list[psutil.Process]:
    """Claude processes working in `run_dir`, whoever their parent now is."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "claude" and process.cwd().startswith(str(run_dir)):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def served(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[Served]:
    env = _environment(tmp_path, mock_anthropic.url)
    process = subprocess.Popen(
        [CLI, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    served = Served(process, env, tmp_path / "run")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{served.base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not become healthy"
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout:
            process.stdout.close()
    assert not _claude_processes_under(served.run_dir)


def _create_key(env: dict[str, str]) -> str:
    created = subprocess.run(
        [CLI, "keys", "create", "--name", "serve-test", "--oauth-token", FAKE_OAUTH_TOKEN],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "eighty"), ("SECRET_KEY", "short"), ("LOG_LEVEL", "LOUD"), ("SYSTEM_PROMPT_MODE", "swap")],
)
def test_a_bad_variable_stops_serve_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = _environment(tmp_path, "http://127.0.0.1:9")
    env[variable] = value

    result = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert variable in message
    if variable == "SECRET_KEY":
        assert value not in message


def test_a_key_made_on_the_command_line_answers_through_serve(served: Served) -> None:
    key = _create_key(served.env)

    answer = openai.OpenAI(api_key=key, base_url=served.base_url).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "ping"}]
    )

    assert answer.choices[0].message.content == "Echo: ping"
    listed = subprocess.run([CLI, "keys", "list"], env=served.env, capture_output=True, text=True, check=True)
    assert "serve-test" in listed.stdout
    assert key not in listed.stdout


def test_sigterm_finishes_the_stream_in_flight_then_exits_cleanly(
    served: Served, mock_anthropic: MockAnthropic
) -> None:
    key = _create_key(served.env)
    mock_anthropic.queue(Reply(text="a steady answer " * 8, chunk_size=8, delay=0.15))
    received: list[str] = []
    first_chunk = threading.Event()

    def read_stream() -> None:
        stream = openai.OpenAI(api_key=key, base_url=served.base_url).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "go"}], stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
                first_chunk.set()

    reader = threading.Thread(target=read_stream)
    reader.start()
    assert first_chunk.wait(15)
    stopping = time.monotonic()
    served.process.send_signal(signal.SIGTERM)

    exit_code = served.process.wait(15)
    took = time.monotonic() - stopping
    reader.join(10)

    assert exit_code == 0
    assert took < 10
    assert "".join(received) == "a steady answer " * 8
    assert not _claude_processes_under(served.run_dir)
