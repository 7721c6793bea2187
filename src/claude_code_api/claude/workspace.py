"""The private directory of one Claude Code process: its home, its working directory and its pid file.

The CLI writes sessions and settings under its home and sends its working directory upstream, so each
process has its own, holding nothing of the server's.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(eq=False)
class Workspace:
    """The private directory of one process: its home, its working directory and its pid file."""

    root: Path
    home: Path = field(init=False)
    cwd: Path = field(init=False)
    pid_file: Path = field(init=False)
    _pid: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.cwd = self.root / "work"
        self.pid_file = self.root / "pid"
        self.home.mkdir(mode=0o700)
        self.cwd.mkdir(mode=0o700)

    def pid(self) -> int | None:
        """The CLI's pid once its launcher has written it (read once: a workspace has one process)."""
        if self._pid is None:
            try:
                self._pid = int(self.pid_file.read_text())
            except (OSError, ValueError):
                return None
        return self._pid

    def cpu_wanted_ns(self) -> int | None:
        """Nanoseconds the CLI has run or waited to run since it started (Linux schedstat), or None."""
        pid = self.pid()
        if pid is None:
            return None
        try:
            ran, waited, _ = (Path("/proc") / str(pid) / "schedstat").read_text().split()
            return int(ran) + int(waited)
        except (OSError, ValueError):
            return None

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Signals the CLI; the SDK has not reaped it yet, so its pid cannot have been reused."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
