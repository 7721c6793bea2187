"""DATA_DIR readable by its owner only: the folder and every folder in it 0700, every file 0600.

It holds the key store (API key hashes, encrypted OAuth tokens, usage), the secret and the admin site's
private key; another user on the machine must not read any of it. `secure_data_dir` runs at start and
fixes what the gateway's user owns; what it cannot fix stops the start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


class DataDirError(Exception):
    """DATA_DIR holds something other users can read that this user cannot make private."""


def create_private_file(path: Path) -> None:
    """Creates `path` empty with mode 0600 unless it exists (so that SQLite opens an owner-only file,
    and its -wal and -shm files, which SQLite gives the database file's mode, are owner-only too)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def secure_data_dir(data_dir: Path) -> list[str]:
    """Makes DATA_DIR and everything in it private to its owner; returns what it changed, one line each.

    Raises DataDirError naming a path that other users can read and this user does not own.
    """
    if not data_dir.is_dir():
        return []
    changed = []
    for path in [data_dir, *data_dir.rglob("*")]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            # A link's target may be a file the operator shares on purpose (a certificate elsewhere).
            continue
        wanted = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            continue
        if info.st_uid != os.geteuid():
            raise DataDirError(
                f"{path} is readable by other users (mode {mode:o}) and owned by another user; "
                f"make it yours or run: chmod {wanted:o} {path}"
            )
        path.chmod(mode & ~0o077 | (wanted & 0o700))
        changed.append(f"{path}: mode {mode:o} -> {stat.S_IMODE(path.lstat().st_mode):o}")
    return changed
