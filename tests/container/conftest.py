"""Fixtures of the container tests: podman, the image built from the Dockerfile, and gateway containers.

The image is built once per session on a cached local Debian base (engine.py). Containers run on the
host network, so the gateway inside reaches the mock Anthropic upstream on the host's 127.0.0.1.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.container.engine import (
    EngineUnavailable,
    Podman,
    base_image,
    build_image,
    python_tool,
    start_podman,
    unavailable,
)
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.gateway_harness import free_ports
from tests.integration.mock_anthropic import MockAnthropic

IMAGE = "localhost/claude-code-api:test"
# The name compose.yaml gives the image; the compose test uses the image built here under it.
COMPOSE_IMAGE = "localhost/claude-code-api:latest"
UID = 10001

_timings: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _timings:
        terminalreporter.section("container figures")
        for name, value in _timings.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def podman() -> Podman:
    """A working podman; installed with apt when missing (fails under CI when it cannot be)."""
    try:
        engine = start_podman()
    except EngineUnavailable as exc:
        unavailable(f"The container tests need podman: {exc}")
        raise
    engine.timings = _timings
    return engine


@pytest.fixture(scope="session")
def podman_compose() -> str:
    """PyPI's podman-compose (1.1+ knows compose profiles; Debian's 1.0.3 does not)."""
    try:
        return python_tool("podman-compose", "podman-compose>=1.1")
    except EngineUnavailable as exc:
        unavailable(f"The compose test needs podman-compose: {exc}")
        raise


@pytest.fixture(scope="session")
def base(podman: Podman) -> str:
    try:
        return base_image(podman)
    except EngineUnavailable as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def image(podman: Podman, base: str) -> str:
    """The gateway's image, built from the repository's Dockerfile on the local base."""
    build_image(podman, base, IMAGE)
    podman("tag", IMAGE, COMPOSE_IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockAnthropic]:
    with MockAnthropic() as mock:
        yield mock


@pytest.fixture
def mock_upstream(upstream: MockAnthropic) -> Iterator[MockAnthropic]:
    upstream.reset()
    yield upstream
    upstream.reset()


@dataclass
class Stopped:
    seconds: float
    exit_code: int


@dataclass
class Gateway:
    """One gateway container on the host network, its data on a named volume."""

    podman: Podman
    image: str
    volume: str
    upstream_url: str
    name: str = field(default_factory=lambda: f"cca-test-{secrets.token_hex(4)}")
    ports: list[int] = field(default_factory=lambda: free_ports(2))

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def https_port(self) -> int:
        return self.ports[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> float:
        """Runs it as compose.yaml does (read-only, no capabilities); returns the seconds to healthy."""
        started = time.monotonic()
        self.podman(
            "run",
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--volume",
            f"{self.volume}:/data",
            "--env",
            f"PORT={self.port}",
            "--env",
            f"HTTPS_PORT={self.https_port}",
            "--env",
            f"ANTHROPIC_BASE_URL={self.upstream_url}",
            "--env",
            "ADMIN_PASSWORD=a-container-test-password",
            "--env",
            "UPSTREAM_MAX_RETRIES=0",
            "--env",
            "FIRST_TOKEN_TIMEOUT=30",
            self.image,
        )
        self.wait_healthy()
        return time.monotonic() - started

    def wait_healthy(self, within: float = 60) -> None:
        """Polls the image's own HEALTHCHECK (podman runs it only when asked: no systemd here)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.podman("healthcheck", "run", self.name, check=False).returncode == 0:
                return
            if self.state()["Status"] != "running":
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not become healthy:\n{self.logs()}")

    def exec(self, *command: str) -> str:
        return self.podman("exec", self.name, *command).stdout

    def create_key(self, name: str = "container-test") -> str:
        """Makes a key as an operator would, with `claude-code-api keys create` inside the container."""
        output = self.exec(
            "claude-code-api", "keys", "create", "--name", name, "--oauth-token", FAKE_OAUTH_TOKEN
        )
        keys = [line.strip() for line in output.splitlines() if line.strip().startswith("sk-")]
        assert keys, output
        return keys[-1]

    def stop(self) -> Stopped:
        """`podman stop` (SIGTERM, SIGKILL after 10 s) and how long it took."""
        started = time.monotonic()
        self.podman("stop", "--time", "10", self.name, timeout=60)
        seconds = time.monotonic() - started
        return Stopped(seconds, int(self.state()["ExitCode"]))

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.podman.inspect(self.name)["State"]  # type: ignore[assignment]
        return state

    def logs(self) -> str:
        result = self.podman("logs", self.name, check=False)
        lines = (result.stdout + result.stderr).splitlines()
        # Without systemd podman reports on stderr that it cannot schedule health checks; not ours.
        return "\n".join(line for line in lines if "systemd" not in line)

    def remove(self) -> None:
        self.podman("rm", "--force", "--time", "0", self.name, check=False)

    def server_certificate(self) -> str:
        """The PEM certificate the admin site presents on HTTPS_PORT."""
        return ssl.get_server_certificate(("127.0.0.1", self.https_port), timeout=10)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base_url}/health", timeout=10).json()
        return body


@pytest.fixture
def volume(podman: Podman) -> Iterator[str]:
    """A new named volume for /data, removed after the test."""
    name = f"cca-test-{secrets.token_hex(4)}"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


@pytest.fixture
def make_gateway(podman: Podman, image: str, volume: str, mock_upstream: MockAnthropic) -> Iterator[Any]:
    """Makes gateway containers on the test's volume; removes them after the test."""
    made: list[Gateway] = []

    def make() -> Gateway:
        gateway = Gateway(podman, image, volume, mock_upstream.url)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.remove()
