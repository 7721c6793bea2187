"""The memory Claude Code processes may use: the machine's free memory, or less under a container's limit."""

from __future__ import annotations

from pathlib import Path

import psutil


def available_memory() -> int:
    """Memory free for Claude processes: the machine's, or less under a container's memory limit."""
    available = int(psutil.virtual_memory().available)
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit():
            available = min(available, max(0, int(limit) - usage))
        break
    return available
