"""Shared by the benchmarks: the mock upstream and the real gateway as subprocesses on 127.0.0.1, and figures.

`MockUpstream` runs tests/integration/mock_anthropic.py in a process of its own (so that its work does not
share the benchmark's interpreter), `Gateway` runs `python -m claude_code_api serve` on a fresh data
directory with one API key. Both end, with every Claude process, when their `with` block does, and the
mock also when the benchmark dies (it exits when its stdin closes).
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
FAKE_OAUTH_TOKEN = "sk-ant-oat01-bench-" + secrets.token_urlsafe(48)
METRICS_TOKEN = "bench-metrics-" + secrets.token_urlsafe(16)
BUNDLED_CLI_MARKER = "_bundled/claude"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_environment() -> dict[str, str]:
    """This process's environment without any of the gateway's own settings, so none leaks in."""
    from claude_code_api.config import Settings

    names = {name.upper() for name in Settings.model_fields}
    return {name: value for name, value in os.environ.items() if name.upper() not in names}


class MockUpstream:
    """The mock Anthropic API in a subprocess, answering every request with one scripted reply."""

    def __init__(
        self,
        *,
        text: str | None = None,
        chunk_size: int = 8,
        delay: float = 0.0,
        first_byte_delay: float = 0.0,
        tool_steps: int = 0,
    ) -> None:
        self.args = [f"--chunk-size={chunk_size}", f"--delay={delay}"]
        self.args.append(f"--first-byte-delay={first_byte_delay}")
        self.args.append(f"--tool-steps={tool_steps}")
        if text is not None:
            self.args.append(f"--text={text}")
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        env = {**_clean_environment(), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "_mock_upstream.py"), *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the mock upstream did not start: {line!r}")
        self.url = line
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


class Gateway:
    """`claude-code-api serve` in a subprocess on a fresh data directory, with one API key."""

    def __init__(self, upstream_url: str, **settings: Any) -> None:
        self.upstream_url = upstream_url
        self.settings = {name.upper(): str(value) for name, value in settings.items()}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="ccapi-bench-"))
        self.log_path = self._dir / "gateway.log"

    def _env(self) -> dict[str, str]:
        return {
            **_clean_environment(),
            "DATA_DIR": str(self._dir / "data"),
            "RUN_DIR": str(self._dir / "run"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "HTTPS_PORT": str(free_port()),
            "ANTHROPIC_BASE_URL": self.upstream_url,
            "ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "METRICS_TOKEN": METRICS_TOKEN,
            "LOG_LEVEL": "INFO",
            "UPSTREAM_MAX_RETRIES": "0",
            "FIRST_TOKEN_TIMEOUT": "60",
            "IDLE_TIMEOUT": "60",
            **self.settings,
        }

    def __enter__(self) -> Self:
        env = self._env()
        created = subprocess.run(
            [sys.executable, "-m", "claude_code_api", "keys", "create", "--name", "bench"],
            env={**env, "CLAUDE_CODE_OAUTH_TOKEN": FAKE_OAUTH_TOKEN},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.api_key = created.stdout.strip().splitlines()[-1]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "claude_code_api", "serve"], env=env, stdout=log, stderr=log
            )
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the gateway did not start; its log:\n{self.log_tail()}")
            time.sleep(0.05)

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        if self.process is not None:
            children = self.claude_processes()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            # The CLI dies with the gateway (PR_SET_PDEATHSIG); this only sweeps up after a crash.
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            self.process = None
        if exc_type is not None:
            print(f"--- gateway log (last lines) ---\n{self.log_tail()}", file=sys.stderr)
        shutil.rmtree(self._dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def warnings(self) -> Counter[str]:
        """The gateway's WARNING and ERROR log lines so far, counted, without their times and request ids."""
        found: Counter[str] = Counter()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return found
        for line in text.splitlines():
            parts = line.split(" ", 5)  # date time LEVEL logger [request id] message
            if len(parts) == 6 and parts[2] in ("WARNING", "ERROR", "CRITICAL"):
                found[f"{parts[2]} {parts[3]}: {parts[5][:160]}"] += 1
        return found

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}

    def rss(self) -> int:
        """The gateway process's resident memory in bytes."""
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def claude_processes(self) -> list[psutil.Process]:
        """The Claude Code processes the gateway runs now."""
        if self.ps is None:
            return []
        found = []
        with contextlib.suppress(psutil.Error):
            for child in self.ps.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    cmdline = child.cmdline()
                    if cmdline and BUNDLED_CLI_MARKER in cmdline[0]:
                        found.append(child)
        return found

    def claude_rss(self) -> tuple[int, int]:
        """How many Claude processes run and the sum of their resident memory in bytes."""
        total = 0
        processes = self.claude_processes()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return len(processes), total

    def metrics(self) -> Samples:
        response = httpx.get(
            f"{self.url}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
        )
        response.raise_for_status()
        found: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


# --- figures ----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def mb(size: float) -> str:
    return f"{size / 1024 / 1024:7.1f}"


def median_p95(values: Sequence[float]) -> str:
    """`median / p95` in milliseconds, or `-` for no values."""
    if not values:
        return f"{'-':>8} / {'-':>8}"
    return f"{ms(statistics.median(values))} / {ms(percentile(values, 0.95))}"


def banner(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def machine() -> str:
    memory = mb(psutil.virtual_memory().total).strip()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, {memory} MB RAM, load average {load}, Python {sys.version.split()[0]}"


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Fails the benchmark (SIGALRM) when the block takes longer than `seconds`."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
