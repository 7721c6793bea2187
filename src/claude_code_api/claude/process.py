"""One Claude Code process through claude-agent-sdk: the key's OAuth token, no tools of its own, a
working directory and home of its own, deadlines on every answer, and a sure end.

Only this module starts Claude Code (`runner.py` decides when). SDK and CLI failures become
GatewayErrors here, in `error_from_result` and `error_from_exception`; the CLI's own error prose (which
names the upstream URL) goes to the log only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
import psutil
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ClaudeSDKError,
    CLINotFoundError,
    Message,
    PermissionResultDeny,
    RateLimitEvent,
    RateLimitInfo,
    ResultMessage,
    SdkMcpTool,
    StreamEvent,
    ToolPermissionContext,
    create_sdk_mcp_server,
    project_key_for_directory,
)

from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import NO_STRUCTURED_ANSWER, ClaudeRequest
from claude_code_api.answer.tools import client_tool_name
from claude_code_api.claude import launcher
from claude_code_api.claude.transcript import transcript_entries
from claude_code_api.config import Settings, SystemPromptMode
from claude_code_api.errors import (
    ClaudeUnavailableError,
    GatewayError,
    InvalidRequestError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)

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

TOKEN_ADVICE = (
    "Tokens copied from ~/.claude/.credentials.json expire within hours; "
    "`claude setup-token` issues a long-lived one. An administrator must give this key a new token."
)

# Why a turn that called client functions ended; it is not a failure.
HANDED_OVER = "Handed to the API client, which runs its own functions."

# How long a process that should stop is given before it is killed.
TERMINATE_GRACE_SECONDS = 1.0


@dataclass(eq=False)
class Workspace:
    """The private directory of one process: its home, its working directory and its pid file."""

    root: Path
    home: Path = field(init=False)
    cwd: Path = field(init=False)
    pid_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.cwd = self.root / "work"
        self.pid_file = self.root / "pid"
        self.home.mkdir(mode=0o700)
        self.cwd.mkdir(mode=0o700)

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Signals the CLI; the SDK has not reaped it yet, so its pid cannot have been reused."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


class ClaudeProcess:
    """A connected Claude Code process: spawned for one key and one set of options, asked in turns."""

    def __init__(self, client: ClaudeSDKClient, workspace: Workspace, settings: Settings) -> None:
        self._client = client
        self.workspace = workspace
        self._settings = settings
        self.turns = 0

    @classmethod
    async def spawn(
        cls, spec: RunSpec, settings: Settings, launcher_path: Path, runtime_dir: Path
    ) -> ClaudeProcess:
        """Starts Claude Code with the request's options and earlier turns; raises GatewayError."""
        workspace = Workspace(Path(tempfile.mkdtemp(prefix="run-", dir=runtime_dir)))
        options = _ProcessOptions(settings, launcher_path).build(spec, workspace)
        client = ClaudeSDKClient(options)
        try:
            await client.connect()
        except ClaudeSDKError as exc:
            await _stop(client, workspace, running=True)
            raise error_from_exception(exc) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _stop(client, workspace, running=True)
            raise
        return cls(client, workspace, settings)

    async def ask(self, request: ClaudeRequest) -> Turn:
        """Sends the request's prompt as the next user turn."""
        self.turns += 1
        try:
            await self._client.query(_prompt_stream(request))
        except ClaudeSDKError as exc:
            raise error_from_exception(exc) from None
        return Turn(self._client, self._settings)

    async def context_tokens(self) -> int:
        """The tokens of everything the process would send upstream now, as Claude Code counts them
        (with Anthropic's count endpoint): system prompt, tools and the conversation it holds."""
        try:
            usage = await self._client.get_context_usage()
        except ClaudeSDKError as exc:
            raise error_from_exception(exc) from None
        total = int(usage.get("totalTokens") or 0)
        if total <= 0:
            raise UpstreamError("Claude Code could not count the tokens; see the server log.")
        return total

    def resident_bytes(self) -> int | None:
        """The process's resident memory, with any children, or None when it cannot be read."""
        pid = self.workspace.pid()
        if pid is None:
            return None
        try:
            process = psutil.Process(pid)
            return int(process.memory_info().rss) + sum(
                int(child.memory_info().rss) for child in process.children(recursive=True)
            )
        except psutil.Error:
            return None

    def terminate(self) -> None:
        """Signals the process to end now; `stop` then reaps it."""
        self.workspace.terminate()

    async def stop(self, *, running: bool) -> None:
        """Ends the process (at once when it is mid-answer) and removes its directory."""
        await _stop(self._client, self.workspace, running=running)


async def _stop(client: ClaudeSDKClient, workspace: Workspace, *, running: bool) -> None:
    if running:
        # Closing stdin does not stop a running turn and the SDK's own close waits 5 s first.
        workspace.terminate()
    try:
        with anyio.fail_after(TERMINATE_GRACE_SECONDS * 2):
            await client.disconnect()
    except Exception:
        logger.warning("Claude Code did not stop in time; killing it")
        workspace.terminate(signal.SIGKILL)
    shutil.rmtree(workspace.root, ignore_errors=True)


class _ProcessOptions:
    """The SDK options for one process, built from the settings and the request."""

    def __init__(self, settings: Settings, launcher_path: Path) -> None:
        self._settings = settings
        self._launcher_path = launcher_path
        self._cli_path = Path(bundled_cli_path())

    def build(self, spec: RunSpec, workspace: Workspace) -> ClaudeAgentOptions:
        return self._options(spec, workspace)

    def _options(self, spec: RunSpec, workspace: Workspace) -> ClaudeAgentOptions:
        request = spec.request
        session_id: str | None = None
        if request.history:
            session_id = str(uuid.uuid4())
            _write_transcript(workspace, session_id, request)
        env = self._environment(spec, workspace)
        extra_args: dict[str, str | None] = {"no-session-persistence": None}
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
            client_tools = {"client": create_sdk_mcp_server("client", tools=_sdk_tools(request))}
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
            can_use_tool=hand_over_tool_call if client_tools else None,
            output_format=output_format,
            include_partial_messages=True,
            # A prompt is the client's text: no `@file` expansion, no slash commands.
            verbatim_prompts=True,
            resume=session_id,
            effort=request.effort,
            thinking=request.thinking,
            extra_args=extra_args,
            stderr=_log_cli_stderr,
        )

    def _environment(self, spec: RunSpec, workspace: Workspace) -> dict[str, str]:
        settings = self._settings
        env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
        env.update(
            {
                "HOME": str(workspace.home),
                "TMPDIR": str(workspace.root),
                "CLAUDE_CODE_OAUTH_TOKEN": spec.oauth_token,
                # Without it the CLI also calls Anthropic's own hosts (flags, telemetry).
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CODE_MAX_RETRIES": str(settings.upstream_max_retries),
                "API_TIMEOUT_MS": str(int(settings.first_token_timeout * 1000)),
            }
        )
        if settings.anthropic_base_url:
            env["ANTHROPIC_BASE_URL"] = settings.anthropic_base_url
        if spec.request.max_output_tokens is not None:
            env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(spec.request.max_output_tokens)
        allowed = [*env, *SDK_VARIABLES]
        env[launcher.CLI_VARIABLE] = str(self._cli_path)
        env[launcher.ALLOWED_VARIABLE] = ",".join(allowed)
        env[launcher.PID_FILE_VARIABLE] = str(workspace.pid_file)
        env[launcher.PARENT_VARIABLE] = str(os.getpid())
        # The server's own variables reach the launcher but not the CLI; blank the ones that
        # would matter if the launcher could not run.
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
            env.setdefault(name, "")
        return env


class Turn:
    """Claude Code's messages for one prompt, under the first-token and idle deadlines.

    After the result, `completed` is set, and `answer` holds the final text when the turn ended
    plainly (not at a handed-over tool call), which is what the process now remembers.
    """

    def __init__(self, client: ClaudeSDKClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self.completed = False
        self.answer: str | None = None

    async def messages(self) -> AsyncGenerator[Message, None]:
        """The turn's messages up to and including its result; raises GatewayError on failure."""
        stream = self._client.receive_response().__aiter__()
        rate_limit: RateLimitInfo | None = None
        answering = False
        while True:
            deadline = self._settings.idle_timeout if answering else self._settings.first_token_timeout
            try:
                async with asyncio.timeout(deadline):
                    message = await anext(stream)
            except StopAsyncIteration:
                raise UpstreamError("Claude Code ended without a result.") from None
            except TimeoutError:
                what = "sent nothing more" if answering else "did not start answering"
                raise UpstreamTimeoutError(
                    f"Claude {what} within {deadline:g} seconds; the request was cancelled."
                ) from None
            except ClaudeSDKError as exc:
                raise error_from_exception(exc) from None
            if isinstance(message, RateLimitEvent):
                rate_limit = message.rate_limit_info
            elif isinstance(message, StreamEvent | AssistantMessage):
                answering = answering or _is_answer(message)
            if isinstance(message, ResultMessage):
                self.completed = True
                handed_over = _handed_over(message)
                if message.is_error and not handed_over:
                    raise error_from_result(message, rate_limit, time.time())
                if not message.is_error and message.structured_output is None:
                    self.answer = message.result
                yield message
                return
            yield message


def _handed_over(result: ResultMessage) -> bool:
    return result.stop_reason == "tool_use" and any(
        client_tool_name(str(denial.get("tool_name", ""))) is not None
        for denial in result.permission_denials or ()
    )


def _is_answer(message: StreamEvent | AssistantMessage) -> bool:
    if isinstance(message, AssistantMessage):
        return message.model != "<synthetic>"
    return message.event.get("type") not in (None, "ping")


def _sdk_tools(request: ClaudeRequest) -> list[SdkMcpTool[Any]]:
    return [
        SdkMcpTool(
            name=tool.name,
            description=tool.description,
            input_schema=tool.input_schema,
            handler=_never_run_here,
        )
        for tool in request.client_tools
    ]


async def _never_run_here(arguments: Any) -> dict[str, Any]:
    # hand_over_tool_call refuses every call before a handler could run.
    return {"content": [{"type": "text", "text": "The client runs this tool."}], "is_error": True}


async def hand_over_tool_call(
    name: str, arguments: dict[str, Any], context: ToolPermissionContext
) -> PermissionResultDeny:
    """Stops the turn at a client function call: the client, not the server, runs its functions.

    The calls are already in the answer; ending the turn here hands them back in the response.
    """
    return PermissionResultDeny(message=HANDED_OVER, interrupt=True)


async def _prompt_stream(request: ClaudeRequest) -> AsyncIterator[dict[str, Any]]:
    yield {
        "type": "user",
        "message": {"role": "user", "content": list(request.prompt)},
        "parent_tool_use_id": None,
    }


def _write_transcript(workspace: Workspace, session_id: str, request: ClaudeRequest) -> None:
    """Writes the earlier turns where the CLI looks for the session it is asked to resume."""
    project = workspace.home / ".claude" / "projects" / project_key_for_directory(workspace.cwd)
    project.mkdir(parents=True, mode=0o700)
    entries = transcript_entries(
        request.history,
        session_id=session_id,
        cwd=str(workspace.cwd.resolve()),
        model=request.model,
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


def error_from_result(result: ResultMessage, rate_limit: RateLimitInfo | None, now: float) -> GatewayError:
    """Maps a failed run's result to the error the client gets; the CLI's prose is logged only."""
    status = result.api_error_status
    logger.warning(
        "Claude run failed: subtype=%s status=%s reason=%s",
        result.subtype,
        status,
        result.terminal_reason,
    )
    if status in (401, 403) or (status is None and "not logged in" in (result.result or "").lower()):
        return UpstreamAuthenticationError(
            f"Claude rejected the OAuth token of this API key (upstream HTTP {status or 401}): "
            f"it is invalid, revoked or expired. {TOKEN_ADVICE}"
        )
    if status == 429:
        if rate_limit is not None and rate_limit.status == "rejected" and rate_limit.resets_at:
            reset = datetime.fromtimestamp(rate_limit.resets_at, UTC).isoformat(timespec="seconds")
            return UpstreamRateLimitError(
                f"The Claude subscription behind this key has reached its usage limit; it resets at {reset}.",
                retry_after=max(1.0, rate_limit.resets_at - now),
            )
        return UpstreamRateLimitError("Claude is rate limiting this key's requests; retry later.")
    if status in (529, 503):
        return ClaudeUnavailableError(
            f"Claude is overloaded (upstream HTTP {status}); retry shortly.", retry_after=5
        )
    if status in (400, 413, 422):
        return InvalidRequestError(
            f"Claude refused the request (upstream HTTP {status}); it may be too long or malformed."
        )
    if status is not None:
        return UpstreamError(f"Claude's API failed (upstream HTTP {status}).")
    if "structured_output" in result.subtype:
        return UpstreamError(NO_STRUCTURED_ANSWER)
    if result.terminal_reason == "api_error":
        return UpstreamError("Claude's API could not be reached; see the server log.")
    return UpstreamError(f"Claude Code ended with an error ({result.subtype}).")


def error_from_exception(exc: ClaudeSDKError) -> GatewayError:
    """Maps an SDK exception (the CLI could not start, crashed or spoke nonsense) to a 502/503."""
    logger.warning("Claude Code failed: %s", type(exc).__name__, exc_info=logger.isEnabledFor(10))
    if isinstance(exc, CLINotFoundError):
        return ClaudeUnavailableError("Claude Code could not be started on the server.")
    return UpstreamError("Claude Code failed while answering; see the server log.")
