"""The real gateway served by uvicorn on 127.0.0.1 in a thread, for tests that call it over HTTP.

`GatewayServer` opens the same `Gateway` and app that `claude-code-api serve` does, on its own data
directory, pointed at the mock Anthropic upstream. The tests then talk to it with the official clients.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psutil
import uvicorn

from claude_code_api.app import create_app
from claude_code_api.config import Settings, load_settings
from claude_code_api.gateway import Gateway
from claude_code_api.store.keys import ApiKey
from tests.factories import FAKE_OAUTH_TOKEN

T = TypeVar("T")

BUNDLED_CLI_MARKER = "_bundled/claude"


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different: they are held together while the kernel picks."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    return free_ports(1)[0]


def make_settings(data_dir: Path, upstream_url: str, **overrides: Any) -> Settings:
    """Settings for a test gateway: its own data directory, the mock upstream, quick deadlines."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "anthropic_base_url": upstream_url,
        "host": "127.0.0.1",
        "port": free_port(),
        "first_token_timeout": 15.0,
        "idle_timeout": 15.0,
        "upstream_max_retries": 0,
        "log_level": "DEBUG",
        "warm_processes": 0,
    }
    values.update(overrides)
    return load_settings(**values)


def claude_processes() -> list[psutil.Process]:
    """Claude Code CLI processes started by this test process, directly or through a server it runs.

    Processes are matched among descendants only, so that tests running elsewhere on the machine
    do not count.
    """
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            cmdline = process.cmdline()
        except psutil.Error:
            continue
        if cmdline and BUNDLED_CLI_MARKER in cmdline[0]:
            found.append(process)
    return found


class GatewayServer:
    """The gateway app on a real socket, its event loop in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Future[None] | None = None
        self.gateway: Gateway | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Runs a coroutine on the server's loop (where the gateway's connections live)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> GatewayServer:
        self._thread.start()
        self.gateway = self.call(Gateway.open(self.settings))
        app = create_app(self.settings, self.gateway)
        # As `serve` does: forwarded headers are trusted only through TRUST_PROXY_HEADERS.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.settings.port, log_config=None, proxy_headers=False
        )
        self._server = uvicorn.Server(config)
        self._server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
        self._serving = asyncio.run_coroutine_threadsafe(self._server.serve(), self._loop)  # type: ignore[assignment]
        self.call(self._wait_started())
        return self

    async def _wait_started(self) -> None:
        assert self._server is not None
        for _ in range(500):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the gateway did not start")

    def create_key(self, name: str = "test", oauth_token: str = FAKE_OAUTH_TOKEN) -> tuple[ApiKey, str]:
        """A new API key made through the key store; returns the record and the full key."""
        assert self.gateway is not None
        return self.call(self.gateway.keys.create_key(name, oauth_token))

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            self._serving.result(30)  # type: ignore[attr-defined]
        if self.gateway is not None:
            self.call(self.gateway.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class _NoSignals:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _no_signal_capture() -> _NoSignals:
    # The test process keeps its own signal handlers.
    return _NoSignals()
