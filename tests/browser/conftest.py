"""Fixtures of the browser tests: Debian's Chromium, and `claude-code-api serve` started as a user would.

The server runs as a subprocess of the installed console script, over HTTPS with a certificate from our
own `generate-certs`, pointed at the mock Anthropic API. Chromium is the system's (`/usr/bin/chromium`),
never a downloaded one: without it the tests skip, and fail under CI with what to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.integration.gateway_harness import free_ports
from tests.integration.mock_anthropic import MockAnthropic

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ADMIN_PASSWORD = "browser-test-password"
CONSOLE_SCRIPT = Path(sys.executable).parent / "claude-code-api"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
_SETTINGS_VARIABLES = (
    "HOST",
    "PORT",
    "HTTPS_PORT",
    "DATA_DIR",
    "DATABASE_URL",
    "SECRET_KEY",
    "ADMIN_PASSWORD",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "TRUST_PROXY_HEADERS",
    "ADMIN_SESSION_HOURS",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; skips (fails under CI) when it is not installed."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = (
        f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium` (`make test` does)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(f"{message}. Skipped outside CI; CI=true makes this a failure.")


@pytest.fixture(scope="module")
def chromium(chromium_path: Path) -> Iterator[Browser]:
    """One Chromium per test module, driven by Playwright.

    Not one per session: while Playwright's synchronous API is open it holds an event loop in the main
    thread, and every asyncio test collected after it would then fail to start its own.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[MockAnthropic]:
    with MockAnthropic() as mock:
        yield mock


@dataclass
class ServedGateway:
    """A running `claude-code-api serve` and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    https_port: int
    log_path: Path

    @property
    def admin_url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _environment(data_dir: Path, port: int, https_port: int, upstream: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name not in _SETTINGS_VARIABLES}
    environment.update(
        {
            "DATA_DIR": str(data_dir),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "HTTPS_PORT": str(https_port),
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ANTHROPIC_BASE_URL": upstream,
            "UPSTREAM_MAX_RETRIES": "0",
            "FIRST_TOKEN_TIMEOUT": "20",
            "IDLE_TIMEOUT": "20",
            "LOG_LEVEL": "INFO",
        }
    )
    return environment


def _wait_until_ready(served: ServedGateway, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if served.process.poll() is not None:
                pytest.fail(
                    f"`claude-code-api serve` exited with {served.process.returncode}:\n{served.log()}"
                )
            try:
                admin = client.get(f"https://127.0.0.1:{served.https_port}/login")
                api = client.get(f"http://127.0.0.1:{served.port}/v1/health")
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if admin.status_code == 200 and api.status_code == 200:
                return
            time.sleep(0.1)
    pytest.fail(f"`claude-code-api serve` did not answer within {timeout} s:\n{served.log()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockAnthropic) -> Iterator[ServedGateway]:
    """A server shared by the tests of a module that run no Claude process: starting one takes seconds.

    Each test makes and checks its own keys; after each, the server must have no child process.
    """
    yield from _serve(tmp_path_factory.mktemp("served"), mock_upstream)


@pytest.fixture
def own_server(tmp_path: Path, mock_upstream: MockAnthropic) -> Iterator[ServedGateway]:
    """A server for one test: stopping it at the test's end checks that no Claude process outlives it."""
    yield from _serve(tmp_path, mock_upstream)


def _serve(tmp_path: Path, mock_upstream: MockAnthropic) -> Iterator[ServedGateway]:
    """`claude-code-api generate-certs`, then `claude-code-api serve`, as a user runs them."""
    data_dir = tmp_path / "data"
    port, https_port = free_ports(2)
    environment = _environment(data_dir, port, https_port, mock_upstream.url)
    executable = str(CONSOLE_SCRIPT) if CONSOLE_SCRIPT.exists() else shutil.which("claude-code-api")
    assert executable, "the claude-code-api console script is not installed (pip install -e .)"
    certs = subprocess.run(
        [executable, "generate-certs"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert certs.returncode == 0, certs.stderr + certs.stdout
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, "serve"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = ServedGateway(process, port, https_port, log_path)
    try:
        _wait_until_ready(served)
        yield served
    finally:
        _stop(served)


@pytest.fixture(autouse=True)
def _no_process_left(request: pytest.FixtureRequest, mock_upstream: MockAnthropic) -> Iterator[None]:
    """Resets the mock upstream, and checks after each test that the shared server has no child process."""
    mock_upstream.reset()
    yield
    if "served" not in request.fixturenames:
        return
    served: ServedGateway = request.getfixturevalue("served")
    deadline = time.monotonic() + 10
    while _descendants(served) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _descendants(served), f"processes outlived the test: {_descendants(served)}"


def _descendants(served: ServedGateway) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(served.process.pid).children(recursive=True) if p.is_running()]
    except psutil.NoSuchProcess:
        return []


def _stop(served: ServedGateway) -> None:
    """Stops the server as a container would (SIGTERM), then checks it left no process behind."""
    children = _descendants(served)
    served.process.send_signal(signal.SIGTERM)
    try:
        served.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(timeout=10)
        pytest.fail(f"`claude-code-api serve` ignored SIGTERM:\n{served.log()}")
    _, alive = psutil.wait_procs(children, timeout=10)
    for process in alive:
        process.kill()
    assert not alive, f"processes outlived the server: {alive}"
    assert served.process.returncode == 0, served.log()
