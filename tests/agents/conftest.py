"""Fixtures of the agentic client tests: `claude-code-api serve` as a user starts it, the mock upstream,
and the real clients (Claude Code bundled with claude-agent-sdk; the Codex CLI and the AI SDK pinned in
tests/clients and installed by `make node-clients`).

One gateway serves the whole folder (starting `serve` and making a key take seconds), and ends with it,
so that no Claude process of its outlives these tests; each test resets the mock and reads the gateway's
counters from `/metrics` before and after. Without Node or the installed Node clients the tests that
need them skip, and fail under CI with what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents.clients import CLIENTS_DIR, CODEX, AgentGateway
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.mock_anthropic import MockAnthropic
from tests.integration.serve_harness import CLI, Served, claude_processes_under, create_key, serve_environment

METRICS_TOKEN = "agents-metrics-token"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(f"{message}. Skipped outside CI; CI=true makes this a failure.")


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable; skips (fails under CI) without Node 20+."""
    found = shutil.which("node")
    if found is None:
        _missing("Node is missing: install Node 20+ and npm (Debian: apt-get install nodejs npm)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def node_clients(node: str) -> Path:
    """tests/clients with its pinned packages installed; skips (fails under CI) when `npm ci` has not run."""
    if not (CLIENTS_DIR / "node_modules" / ".package-lock.json").exists() or not CODEX.exists():
        _missing(
            f"The Node clients are not installed in {CLIENTS_DIR}: run `make node-clients` (`make test` does)"
        )
    return CLIENTS_DIR


@pytest.fixture(scope="package")
def mock_anthropic_server() -> Iterator[MockAnthropic]:
    with MockAnthropic() as mock:
        yield mock


@pytest.fixture
def mock_anthropic(mock_anthropic_server: MockAnthropic) -> Iterator[MockAnthropic]:
    """The mock Messages API with nothing queued or recorded."""
    mock_anthropic_server.reset()
    yield mock_anthropic_server
    mock_anthropic_server.reset()


class LoggedServed(Served):
    """`serve` writing its log to a file: a session's worth of log lines would fill an unread pipe."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        super().__init__(env)

    def __post_init__(self) -> None:
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [CLI, "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True
            )

    def output(self) -> str:
        return self.log.read_text()[-20000:]


@pytest.fixture(scope="package")
def agent_gateway(mock_anthropic_server: MockAnthropic) -> Iterator[AgentGateway]:
    """`claude-code-api serve` on free ports, pointed at the mock, with one key for the clients."""
    home = Path(tempfile.mkdtemp(prefix="agents-serve-"))
    env = serve_environment(home, mock_anthropic_server.url, METRICS_TOKEN=METRICS_TOKEN)
    served = LoggedServed(env, home / "serve.log")
    try:
        served.wait_healthy()
        key = create_key(env, "agents", FAKE_OAUTH_TOKEN)
        yield AgentGateway(served, key, METRICS_TOKEN)
    finally:
        served.stop()
        leftover = claude_processes_under(served.run_dir)
        shutil.rmtree(home, ignore_errors=True)
    assert not leftover, f"Claude processes outlived serve: {leftover}"


@pytest.fixture
def gateway(agent_gateway: AgentGateway, mock_anthropic: MockAnthropic) -> AgentGateway:
    """The session's gateway, for a test whose mock starts empty."""
    return agent_gateway
