"""One live Claude Code process through claude-agent-sdk: started for one credential and one set of options,
then given conversation after conversation.

Only this package starts Claude Code (`runner.py` decides when). A process reads its CLI's messages into an
inbox from the moment it starts, so that what the CLI says between turns (the replay of a model switch) is
seen before the next prompt goes out. Between requests the process can be rewound to the start of any
exchange it holds (`rewind_conversation`, a control request of the CLI's stream-json protocol, measured in
shared/CLAUDE-CODE.md §12) and switched to another model (`set_model`): a reused process sends the upstream
the new conversation and nothing of the last one.

A fresh process's first prompt takes tens of milliseconds longer than later ones (its code paths run for
the first time), so a spare is warmed up before it is offered: one prompt the CLI appends without
starting a turn, then rewound (figures in bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import psutil
from claude_agent_sdk import ClaudeSDKClient, ClaudeSDKError, Message, ResultMessage, UserMessage

from claude_code_api.answer.blocks import ContentBlock
from claude_code_api.answer.loop import RunSpec
from claude_code_api.answer.request import ClaudeRequest
from claude_code_api.claude.conversation import HeldConversation, fingerprint
from claude_code_api.claude.failures import error_from_exception
from claude_code_api.claude.handover import ToolHandOver
from claude_code_api.claude.options import ProcessOptions, claude_prompt
from claude_code_api.claude.turn import ProcessEnded, Turn
from claude_code_api.claude.workspace import Workspace
from claude_code_api.config import Settings

logger = logging.getLogger(__name__)

# How long a process that should stop is given before it is killed.
TERMINATE_GRACE_SECONDS = 1.0
# How long a control request (rewind, model switch, interrupt) may take before the process is given up.
CONTROL_TIMEOUT_SECONDS = 5.0
# A model switch in a process that holds a conversation replays one user message; it arrives at once.
MODEL_SWITCH_REPLAY_SECONDS = 2.0
# What a spare's warm-up prompt says: nothing reads it, as it is rewound before any turn.
WARM_UP_TEXT = "warm-up"


class ProcessUnusable(Exception):
    """The process did not do what a reset asked: it is retired, and the request goes elsewhere."""


class ClaudeProcess:
    """A connected Claude Code process: its options are fixed, its conversation and model are not."""

    def __init__(
        self,
        client: ClaudeSDKClient,
        workspace: Workspace,
        settings: Settings,
        handover: ToolHandOver,
        *,
        model: str,
        held: HeldConversation,
    ) -> None:
        self._client = client
        self.workspace = workspace
        self._settings = settings
        self.handover = handover
        self.model = model
        self.held = held
        self.turns = 0
        self.cost_seen = 0.0
        self._inbox: asyncio.Queue[Message | ProcessEnded] = asyncio.Queue()
        self._pump = asyncio.ensure_future(self._read_messages())

    @classmethod
    async def spawn(
        cls,
        spec: RunSpec,
        settings: Settings,
        launcher_path: Path,
        runtime_dir: Path,
        *,
        low_priority: bool = False,
    ) -> ClaudeProcess:
        """Starts Claude Code with the request's options, holding the request's earlier turns (which it
        replays from a transcript); raises GatewayError."""
        workspace = Workspace(Path(tempfile.mkdtemp(prefix="run-", dir=runtime_dir)))
        handover = ToolHandOver()
        history, _ = claude_prompt(spec.request)
        options = ProcessOptions(settings, launcher_path).build(
            spec, workspace, history, handover, low_priority=low_priority
        )
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
        held = HeldConversation(floor=fingerprint(history))
        return cls(client, workspace, settings, handover, model=spec.request.model, held=held)

    async def _read_messages(self) -> None:
        try:
            async for message in self._client.receive_messages():
                self._inbox.put_nowait(message)
        except ClaudeSDKError as exc:
            self._inbox.put_nowait(ProcessEnded(error_from_exception(exc)))
        except Exception:
            logger.warning("Reading Claude Code's messages failed", exc_info=True)
            self._inbox.put_nowait(ProcessEnded(None))
        else:
            self._inbox.put_nowait(ProcessEnded(None))

    @property
    def alive(self) -> bool:
        return not self._pump.done()

    async def prepare(self, keep: int, model: str) -> int:
        """Rewinds the conversation to its first `keep` exchanges and switches to `model`; returns the
        number of rewind steps. Raises ProcessUnusable when the CLI does not comply."""
        rewinds = self.held.rewinds_for(keep)
        if model != self.model:
            if self.held.exchanges and not rewinds:
                # The switch would stay in the conversation as a user message of its own.
                raise ProcessUnusable("a model switch inside a kept conversation")
            await self._control({"subtype": "set_model", "model": model})
            if self.held.exchanges:
                await self._drain_model_switch_replay()
            self.model = model
        for prompt_uuid in rewinds:
            await self.rewind_prompt(prompt_uuid)
        self.held.truncate(keep)
        self._drop_stray_messages()
        return len(rewinds)

    async def rewind_prompt(self, prompt_uuid: str) -> None:
        """Removes a prompt the conversation does not record yet, and all that followed it."""
        answer = await self._control({"subtype": "rewind_conversation", "target_message_uuid": prompt_uuid})
        if not answer.get("rewound"):
            raise ProcessUnusable(f"the CLI did not rewind: {answer.get('reason')}")

    async def warm_up(self) -> None:
        """Takes a fresh process through its first prompt without an upstream request and leaves its
        conversation empty again; raises ProcessUnusable when the CLI does not comply."""
        # `shouldQuery: false` (a field of the CLI's stream-json input) appends the prompt to the
        # conversation without a turn; the CLI still replays it with its uuid and ends with a result.
        try:
            await self._client.query(_prompt_stream(({"type": "text", "text": WARM_UP_TEXT},), query=False))
        except ClaudeSDKError as exc:
            raise ProcessUnusable(f"the warm-up prompt could not be sent: {exc}") from None
        prompt_uuid: str | None = None
        try:
            while True:
                message = await self.next_message(CONTROL_TIMEOUT_SECONDS)
                if isinstance(message, ProcessEnded):
                    raise ProcessUnusable("the process ended")
                if isinstance(message, UserMessage) and message.parent_tool_use_id is None:
                    prompt_uuid = message.uuid
                if isinstance(message, ResultMessage):
                    break
        except TimeoutError:
            raise ProcessUnusable("the warm-up prompt was not answered") from None
        if message.is_error or prompt_uuid is None:
            raise ProcessUnusable("the warm-up prompt was not taken as a prompt")
        await self.rewind_prompt(prompt_uuid)

    async def ask(self, request: ClaudeRequest, start: str) -> Turn:
        """Sends the request's prompt as the next user turn; the process holds the conversation `start`."""
        self.turns += 1
        _, prompt = claude_prompt(request)
        turn = Turn(self, self._settings, start)
        try:
            await self._client.query(_prompt_stream(prompt))
        except ClaudeSDKError as exc:
            raise error_from_exception(exc) from None
        return turn

    async def next_message(self, within: float) -> Message | ProcessEnded:
        """The CLI's next message; TimeoutError when none comes within `within` seconds."""
        async with asyncio.timeout(within):
            return await self._inbox.get()

    async def interrupt(self) -> None:
        """Stops the running turn (its upstream request is closed); the process stays usable."""
        await self._control({"subtype": "interrupt"})

    async def context_tokens(self) -> int:
        """The tokens of everything the process would send upstream now, as Claude Code counts them
        (with Anthropic's count endpoint): system prompt, tools and the conversation it holds."""
        try:
            usage = await self._client.get_context_usage()
        except ClaudeSDKError as exc:
            raise error_from_exception(exc) from None
        return int(usage.get("totalTokens") or 0)

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

    def cpu_wanted_ns(self) -> int | None:
        """Nanoseconds the CLI has run or waited to run, for the turn admission (None: unknown)."""
        return self.workspace.cpu_wanted_ns()

    def raise_priority(self) -> None:
        """Gives a spare started at low priority the normal priority once it answers (where allowed)."""
        pid = self.workspace.pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, 0)

    def terminate(self) -> None:
        """Signals the process to end now; `stop` then reaps it."""
        self.workspace.terminate()

    async def stop(self, *, running: bool) -> None:
        """Ends the process (at once when it is mid-answer) and removes its directory."""
        self.handover.abandon()
        await _stop(self._client, self.workspace, running=running)
        self._pump.cancel()

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        # The SDK wraps no rewind; its own set_model and interrupt travel this same control channel.
        query = self._client._query
        if query is None:
            raise ProcessUnusable("not connected")
        try:
            with anyio.fail_after(CONTROL_TIMEOUT_SECONDS):
                answer: dict[str, Any] = await query._send_control_request(request)
                return answer
        except Exception as exc:
            raise ProcessUnusable(f"{request['subtype']} failed: {type(exc).__name__}") from exc

    async def _drain_model_switch_replay(self) -> None:
        try:
            while True:
                message = await self.next_message(MODEL_SWITCH_REPLAY_SECONDS)
                if isinstance(message, UserMessage):
                    return
                if isinstance(message, ProcessEnded):
                    raise ProcessUnusable("the process ended")
        except TimeoutError:
            raise ProcessUnusable("the model switch was not replayed") from None

    def _drop_stray_messages(self) -> None:
        while not self._inbox.empty():
            message = self._inbox.get_nowait()
            if isinstance(message, ProcessEnded):
                self._inbox.put_nowait(message)
                return
            logger.debug("Dropped a message between turns: %s", type(message).__name__)


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


async def _prompt_stream(
    prompt: tuple[ContentBlock, ...], *, query: bool = True
) -> AsyncIterator[dict[str, Any]]:
    message: dict[str, Any] = {
        "type": "user",
        "message": {"role": "user", "content": list(prompt)},
        "parent_tool_use_id": None,
    }
    if not query:
        message["shouldQuery"] = False
    yield message
