"""The runner's runtime folders (`claude-code-api-*` in the temporary directory or RUN_DIR): each records
its owner, so that a server starting after a crash removes the folders of its dead predecessors.

A folder's owner is a process id with that process's start time: a live process that merely reuses a
dead owner's id does not keep the folder. Folders of live servers, of other users, and those without an
owner record (made by a version before this one, or being made right now) are left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import psutil

PREFIX = "claude-code-api-"
OWNER_FILE = "owner"
# Start times are read back from text; a process is the same one within this margin (seconds).
_START_TIME_TOLERANCE = 0.01

logger = logging.getLogger(__name__)


def create_runtime_dir(base: Path | None) -> Path:
    """Removes the runtime folders of dead servers in `base` (default: the temporary directory), then
    creates this server's own, owner-only, recording this process as its owner."""
    remove_dead_runtime_dirs(base)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    pid = os.getpid()
    (path / OWNER_FILE).write_text(f"{pid} {psutil.Process(pid).create_time()!r}\n", encoding="ascii")
    return path


def remove_dead_runtime_dirs(base: Path | None) -> list[Path]:
    """Removes the runtime folders in `base` whose recorded owner process is gone; returns them."""
    parent = Path(base) if base is not None else Path(tempfile.gettempdir())
    removed = []
    try:
        candidates = sorted(parent.glob(f"{PREFIX}*"))
    except OSError:
        return []
    for folder in candidates:
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.geteuid():
                continue
            owner = (folder / OWNER_FILE).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            continue
        if _owner_alive(owner):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        logger.info(
            "Removed %d runtime folder(s) left by servers that ended without cleaning up", len(removed)
        )
    return removed


def _owner_alive(record: str) -> bool:
    try:
        pid_text, started_text = record.split()
        pid, started = int(pid_text), float(started_text)
    except ValueError:
        # A record we cannot read is not proof that its owner is dead.
        return True
    try:
        return abs(psutil.Process(pid).create_time() - started) < _START_TIME_TOLERANCE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        # Another user's process, say: alive as far as we can tell.
        return True
