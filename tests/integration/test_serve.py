"""`claude-code-api serve` as a user starts it: configuration errors, keys, a stream, and SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.mock_anthropic import MockAnthropic, Reply
from tests.integration.serve_harness import (
    CLI,
    Served,
    claude_processes_under,
    create_key,
    run_cli,
    serve_environment,
)


@pytest.fixture
def served(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[Served]:
    server = Served(serve_environment(tmp_path, mock_anthropic.url))
    try:
        yield server.wait_healthy()
    finally:
        server.stop()
    assert not claude_processes_under(server.run_dir)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "eighty"), ("SECRET_KEY", "short"), ("LOG_LEVEL", "LOUD"), ("SYSTEM_PROMPT_MODE", "swap")],
)
def test_a_bad_variable_stops_serve_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9", **{variable: value})

    result = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert variable in message
    if variable == "SECRET_KEY":
        assert value not in message


def test_a_malformed_model_table_stops_serve_with_one_line_naming_it(tmp_path: Path) -> None:
    table = tmp_path / "models.toml"
    table.write_text("[bedrock]\nsonnet = 4.5\n")
    env = serve_environment(tmp_path, "http://127.0.0.1:9", MODEL_TABLE=str(table))

    result = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()
    assert f"{table}: [bedrock] sonnet: must be a model id in quotes" in message


def test_a_shared_database_without_a_secret_key_is_refused_at_start(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9", DATABASE_URL="postgresql://db.example/keys")

    result = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_key_made_on_the_command_line_answers_through_serve(served: Served) -> None:
    key = create_key(served.env, "serve-test", FAKE_OAUTH_TOKEN)

    with openai.OpenAI(api_key=key, base_url=served.base_url) as client:
        answer = client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "ping"}]
        )

    assert answer.choices[0].message.content == "Echo: ping"
    listed = run_cli(served.env, "keys", "list")
    assert "serve-test" in listed.stdout
    assert key not in listed.stdout


def test_sigterm_finishes_the_stream_in_flight_then_exits_cleanly(
    served: Served, mock_anthropic: MockAnthropic
) -> None:
    key = create_key(served.env, "serve-test", FAKE_OAUTH_TOKEN)
    mock_anthropic.queue(Reply(text="a steady answer " * 8, chunk_size=8, delay=0.15))
    received: list[str] = []
    first_chunk = threading.Event()

    def read_stream() -> None:
        with openai.OpenAI(api_key=key, base_url=served.base_url) as client:
            stream = client.chat.completions.create(
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
    assert not claude_processes_under(served.run_dir)
