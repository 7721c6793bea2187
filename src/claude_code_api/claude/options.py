"""How a Claude Code process is started: its SDK options, its environment, and the prompt it is given.

What is decided here is fixed for the life of a process, which is why `spawn_signature` covers it: the
credential, the system prompt, the client's tools, the output schema, the output limit and the effort.
The model is not: a live process switches it (`set_model`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from claude_agent_sdk import ClaudeAgentOptions, SdkMcpTool, create_sdk_mcp_server, project_key_for_directory

from claude_code_api.answer.blocks import ContentBlock
from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import ClaudeRequest, ClaudeTurn
from claude_code_api.claude import launcher
from claude_code_api.claude.credential_env import credential_environment, write_credential_files
from claude_code_api.claude.handover import ToolHandOver
from claude_code_api.claude.transcript import transcript_entries
from claude_code_api.claude.workspace import Workspace
from claude_code_api.config import Settings, SystemPromptMode
from claude_code_api.errors import ClaudeUnavailableError

logger = logging.getLogger(__name__)

# Variables of the server's own environment a Claude process may see; everything else is dropped.
INHERITED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
)

# Variables the SDK itself adds for its child.
SDK_VARIABLES = (
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_AGENT_SDK_VERSION",
    "CLAUDE_AGENT_SDK_CLIENT_APP",
    "CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP",
    "CLAUDE_CODE_SDK_READS_SESSION_STATE",
    "PWD",
)

# Claude Code starts a turn only on a new user prompt. When the conversation ends with tool results that
# no process waits for, those go into the replayed history and this prompt asks Claude to go on from them.
TOOL_RESULTS_PROMPT = "Continue: the tool results above answer your tool calls."

# The smallest buffer for one line of the CLI's output.
MIN_MESSAGE_BUFFER_BYTES = 16 * 2**20

# How much lower a spare started ahead of need runs than a process that answers.
SPARE_NICENESS = 10


def spawn_signature(spec: RunSpec) -> str:
    """What a process is started with and cannot change later: its credential and its options."""
    request = spec.request
    credential = spec.credential
    fixed = {
        # The credential's name and a digest of all of it: a process never serves another credential,
        # nor this one once its secret or options changed.
        "credential": credential.name,
        "credential_digest": hashlib.sha256(repr(dataclasses.astuple(credential)).encode()).hexdigest(),
        "system": request.system_prompt,
        "max_output_tokens": request.max_output_tokens,
        "effort": request.effort,
        "thinking": request.thinking,
        "tools": [(t.name, t.description, t.input_schema) for t in request.client_tools],
        "output_schema": request.output_schema,
    }
    return hashlib.sha256(orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS)).hexdigest()


def claude_prompt(request: ClaudeRequest) -> tuple[tuple[ClaudeTurn, ...], tuple[ContentBlock, ...]]:
    """The earlier turns and the prompt Claude Code is given for a request it answers afresh.

    Claude Code starts a turn only on a new user prompt: when the conversation ends with tool results
    (and no process waits for them), the results join the earlier turns and a short prompt asks Claude
    to go on from them.
    """
    if any(block["type"] == "tool_result" for block in request.prompt):
        return (*request.history, ClaudeTurn("user", request.prompt)), (
            {"type": "text", "text": TOOL_RESULTS_PROMPT},
        )
    return request.history, request.prompt


class ProcessOptions:
    """The SDK options for one process, built from the settings and the request."""

    def __init__(self, settings: Settings, launcher_path: Path) -> None:
        self._settings = settings
        self._launcher_path = launcher_path
        self._cli_path = Path(bundled_cli_path())

    def build(
        self,
        spec: RunSpec,
        workspace: Workspace,
        history: tuple[ClaudeTurn, ...],
        handover: ToolHandOver,
        *,
        low_priority: bool = False,
    ) -> ClaudeAgentOptions:
        request = spec.request
        session_id: str | None = None
        if history:
            session_id = str(uuid.uuid4())
            _write_transcript(workspace.home, workspace.cwd, session_id, history, request.model)
        env = self._environment(spec, workspace, low_priority=low_priority)
        # The CLI replays each user message with its uuid: the handle a later rewind needs.
        extra_args: dict[str, str | None] = {"no-session-persistence": None, "replay-user-messages": None}
        system_prompt: Any = None
        if request.system_prompt:
            prompt_file = workspace.root / "system-prompt.txt"
            prompt_file.write_text(request.system_prompt)
            if self._settings.system_prompt_mode is SystemPromptMode.REPLACE:
                system_prompt = {"type": "file", "path": str(prompt_file)}
            else:
                extra_args["append-system-prompt-file"] = str(prompt_file)
        if system_prompt is None and self._settings.system_prompt_mode is SystemPromptMode.APPEND:
            system_prompt = {"type": "preset", "preset": "claude_code"}
        tools = list(self._settings.claude_tools)
        client_tools: dict[str, Any] = {}
        if request.client_tools:
            handler = handover.handler()
            sdk_tools = [
                SdkMcpTool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.input_schema,
                    handler=handler,
                )
                for tool in request.client_tools
            ]
            client_tools = {"client": create_sdk_mcp_server("client", tools=sdk_tools)}
        output_format = None
        if request.output_schema is not None:
            output_format = {"type": "json_schema", "schema": request.output_schema}
        return ClaudeAgentOptions(
            cli_path=self._launcher_path,
            cwd=workspace.cwd,
            env=env,
            model=request.model,
            system_prompt=system_prompt,
            tools=tools,
            allowed_tools=tools,
            setting_sources=[],
            strict_mcp_config=True,
            mcp_servers=client_tools,
            # Every call of a client function asks first: that is where its id is learned.
            can_use_tool=handover.permit if client_tools else None,
            output_format=output_format,
            include_partial_messages=True,
            # A prompt is the client's text: no `@file` expansion, no slash commands.
            verbatim_prompts=True,
            resume=session_id,
            effort=request.effort,
            thinking=request.thinking,
            extra_args=extra_args,
            # The CLI replays each prompt as one JSON line: a request as large as MAX_REQUEST_BYTES
            # must fit (the SDK's own default of 1 MiB would break the process instead).
            max_buffer_size=max(MIN_MESSAGE_BUFFER_BYTES, 2 * self._settings.max_request_bytes),
            stderr=_log_cli_stderr,
        )

    def _environment(self, spec: RunSpec, workspace: Workspace, *, low_priority: bool) -> dict[str, str]:
        settings = self._settings
        env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
        env.update(
            {
                "HOME": str(workspace.home),
                "TMPDIR": str(workspace.root),
                # Without it the CLI also calls Anthropic's own hosts (flags, telemetry).
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CODE_MAX_RETRIES": str(settings.upstream_max_retries),
                "API_TIMEOUT_MS": str(int(settings.first_token_timeout * 1000)),
            }
        )
        upstream = credential_environment(spec.credential, workspace.root)
        write_credential_files(upstream)
        env.update(upstream.variables)
        if settings.anthropic_base_url and spec.credential.kind in ("subscription", "anthropic-api-key"):
            # The operator's base URL (a proxy, or a test's mock) for credentials that name none.
            env["ANTHROPIC_BASE_URL"] = env["ANTHROPIC_BASE_URL"] or settings.anthropic_base_url
        if spec.request.max_output_tokens is not None:
            env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(spec.request.max_output_tokens)
        allowed = [*env, *SDK_VARIABLES]
        env[launcher.CLI_VARIABLE] = str(self._cli_path)
        env[launcher.ALLOWED_VARIABLE] = ",".join(allowed)
        env[launcher.PID_FILE_VARIABLE] = str(workspace.pid_file)
        env[launcher.PARENT_VARIABLE] = str(os.getpid())
        if low_priority:
            env[launcher.NICENESS_VARIABLE] = str(SPARE_NICENESS)
        return env


def _write_transcript(
    home: Path, cwd: Path, session_id: str, history: tuple[ClaudeTurn, ...], model: str
) -> None:
    """Writes the earlier turns where the CLI looks for the session it is asked to resume."""
    project = home / ".claude" / "projects" / project_key_for_directory(cwd)
    project.mkdir(parents=True, mode=0o700)
    entries = transcript_entries(
        history,
        session_id=session_id,
        cwd=str(cwd.resolve()),
        model=model,
        timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        uuids=(str(uuid.uuid4()) for _ in iter(int, 1)),
    )
    (project / f"{session_id}.jsonl").write_bytes(b"".join(orjson.dumps(entry) + b"\n" for entry in entries))


def _log_cli_stderr(line: str) -> None:
    logger.debug("claude: %s", line.rstrip())


def bundled_cli_path() -> str:
    """The Claude Code executable shipped inside the claude-agent-sdk wheel."""
    import claude_agent_sdk

    cli = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not cli.exists():
        raise ClaudeUnavailableError(
            f"The Claude Code CLI bundled with claude-agent-sdk is missing ({cli}); "
            "reinstall claude-agent-sdk."
        )
    return str(cli)


def bundled_cli_version() -> str:
    """The version of the Claude Code CLI bundled with claude-agent-sdk."""
    from claude_agent_sdk._cli_version import __cli_version__

    return __cli_version__
