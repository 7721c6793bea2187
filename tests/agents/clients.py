"""The real agentic clients run as a user runs them, non-interactively, against a gateway: each in an
environment of its own (a fresh HOME, an empty working directory, nothing of the test process's
ANTHROPIC_*/CLAUDE_*/OPENAI_* variables), with only the gateway's URL and key. See tests/clients/README.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import claude_agent_sdk
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.mock_anthropic import RecordedRequest
from tests.integration.serve_harness import Served

ROOT = Path(__file__).resolve().parents[2]
CLIENTS_DIR = ROOT / "tests" / "clients"
CODEX = CLIENTS_DIR / "node_modules" / ".bin" / "codex"
AI_SDK_SCRIPT = CLIENTS_DIR / "ai_sdk_client.mjs"
# The CLI that claude-agent-sdk bundles: the same Claude Code the gateway runs behind it.
CLAUDE = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
CLIENT_TIMEOUT = 120
# What a tool loop replayed in a new process adds to the conversation; one resumed in the waiting
# process never does.
SYNTHETIC_TURNS = ("No response requested", "Continue: the tool results")

# The gateway's counters of Claude processes (`/metrics`, `claude_code_api_claude_<name>_total`).
COUNTERS = (
    "processes_started",
    "process_reuses",
    "conversation_resets",
    "tool_call_parks",
    "tool_call_resumes",
)


def tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool_result blocks of an upstream request's last user message."""
    users = [message for message in request.body["messages"] if message["role"] == "user"]
    content = users[-1]["content"] if users else []
    return [block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    """The text of a tool_result block: its first text part (Claude Code may add a <system-reminder>
    part of its own after the client's result)."""
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    return next((part["text"] for part in content if part.get("type") == "text"), "")


def synthetic_turns(request: RecordedRequest) -> list[str]:
    """The synthetic turns of a replay that an upstream request carries."""
    text = json.dumps(request.body)
    return [turn for turn in SYNTHETIC_TURNS if turn in text]


@dataclass(frozen=True)
class AgentGateway:
    """A running `serve`, a key of it, and the token its `/metrics` takes."""

    served: Served
    key: str
    metrics_token: str

    @property
    def url(self) -> str:
        """What Claude Code takes as ANTHROPIC_BASE_URL."""
        return self.served.base_url.removesuffix("/v1")

    @property
    def base_url(self) -> str:
        """What OpenAI-style clients take as base URL."""
        return self.served.base_url

    def counters(self) -> dict[str, float]:
        """The Claude process counters of `/metrics` now."""
        response = httpx.get(
            f"{self.url}/metrics", headers={"authorization": f"Bearer {self.metrics_token}"}, timeout=10
        )
        response.raise_for_status()
        values = {}
        for family in text_string_to_metric_families(response.text):
            name = family.name.removeprefix("claude_code_api_claude_")
            if name in COUNTERS:
                values[name] = family.samples[0].value
        return values

    def counted_since(self, before: dict[str, float]) -> dict[str, float]:
        """How much each counter moved since `before`."""
        now = self.counters()
        return {name: now[name] - before.get(name, 0) for name in COUNTERS}


@dataclass(frozen=True)
class Finished:
    """A client run to its end."""

    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[Any]:
        """stdout's lines that are JSON objects (stream-json, `codex exec --json`, the AI SDK script)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"


def _clean_environment(home: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> Finished:
    done = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def run_claude(gateway: AgentGateway, home: Path, cwd: Path, *args: str) -> Finished:
    """The bundled Claude Code CLI with default settings: only the gateway's URL and key."""
    env = _clean_environment(
        home,
        ANTHROPIC_BASE_URL=gateway.url,
        ANTHROPIC_API_KEY=gateway.key,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    return _run([str(CLAUDE), *args], env, cwd)


CODEX_CONFIG = """\
model = "claude-sonnet-4-5"
model_provider = "gw"

[model_providers.gw]
name = "gateway"
base_url = "{base_url}"
wire_api = "responses"
env_key = "GW_KEY"
"""


def run_codex(gateway: AgentGateway, home: Path, cwd: Path, prompt: str) -> Finished:
    """`codex exec` with a custom provider on `/v1/responses`; no plugin sync or analytics (no network)."""
    (home / "config.toml").write_text(CODEX_CONFIG.format(base_url=gateway.base_url))
    env = _clean_environment(home, CODEX_HOME=str(home), GW_KEY=gateway.key)
    command = [
        str(CODEX),
        "exec",
        "--skip-git-repo-check",
        "--ephemeral",
        "--color",
        "never",
        "-s",
        "read-only",
        "--disable",
        "plugins",
        "--disable",
        "remote_plugin",
        "-c",
        "analytics.enabled=false",
        "--json",
        prompt,
    ]
    return _run(command, env, cwd)


def run_ai_sdk(node: str, gateway: AgentGateway, home: Path, mode: str) -> Finished:
    """tests/clients/ai_sdk_client.mjs in one mode: `<anthropic|chat|responses>-<generate|stream>[-tool]`."""
    env = _clean_environment(home)
    command = [
        node,
        str(AI_SDK_SCRIPT),
        "--base-url",
        gateway.base_url,
        "--api-key",
        gateway.key,
        "--mode",
        mode,
    ]
    return _run(command, env, home)
