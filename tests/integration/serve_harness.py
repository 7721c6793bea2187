"""`claude-code-api` run as a user runs it: the console script in a subprocess, on free ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.integration.gateway_harness import free_ports

CLI = shutil.which("claude-code-api") or str(Path(__file__).parents[2] / ".venv" / "bin" / "claude-code-api")


def serve_environment(tmp_path: Path, upstream: str, **extra: str) -> dict[str, str]:
    """The environment of a `serve` with its own data and run directories and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    port, https_port = free_ports(2)
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "RUN_DIR": str(tmp_path / "run"),
            "PORT": str(port),
            "HTTPS_PORT": str(https_port),
            "ANTHROPIC_BASE_URL": upstream,
            "ADMIN_PASSWORD": "a-test-password",
            "UPSTREAM_MAX_RETRIES": "0",
        }
    )
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Runs a `claude-code-api` command to the end."""
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def create_key(env: dict[str, str], name: str, oauth_token: str, *options: str) -> str:
    """Makes a key with `keys create` and returns the full key it prints last."""
    created = run_cli(env, "keys", "create", "--name", name, "--oauth-token", oauth_token, *options)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def claude_processes_under(run_dir: Path) -> list[psutil.Process]:
    """Claude processes working in `run_dir`, whoever their parent now is."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "claude" and process.cwd().startswith(str(run_dir)):
                found.append(process)
        except psutil.Error:
            continue
    return found


@dataclass
class Served:
    """A running `claude-code-api serve`."""

    env: dict[str, str]
    process: subprocess.Popen[str] = field(init=False)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            [CLI, "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}/v1"

    @property
    def admin_url(self) -> str:
        return f"https://127.0.0.1:{self.env['HTTPS_PORT']}"

    @property
    def run_dir(self) -> Path:
        return Path(self.env["RUN_DIR"])

    def wait_healthy(self, timeout: float = 60) -> Served:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.output()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not become healthy: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        if self.process.poll() is None or self.process.stdout is None:
            return "(still running)"
        return self.process.stdout.read()

    def stop(self) -> int:
        """SIGTERM, as a container engine sends it; SIGKILL only if it does not end in 15 s."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        if self.process.stdout:
            self.process.stdout.close()
        return code
