"""Tests of runtime_dirs.py: a server removes the runtime folders of its dead predecessors, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from claude_code_api.runtime_dirs import OWNER_FILE, PREFIX, create_runtime_dir, remove_dead_runtime_dirs


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _folder(base: Path, name: str, owner: str | None) -> Path:
    folder = base / f"{PREFIX}{name}"
    (folder / "run-1" / "home" / ".claude" / "sessions").mkdir(parents=True)
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def test_a_new_runtime_folder_records_this_process_as_its_owner(tmp_path: Path) -> None:
    folder = create_runtime_dir(tmp_path)

    assert folder.parent == tmp_path
    assert folder.name.startswith(PREFIX)
    assert folder.stat().st_mode & 0o077 == 0
    pid, started = (folder / OWNER_FILE).read_text().split()
    assert int(pid) == os.getpid()
    assert float(started) == psutil.Process().create_time()


def test_only_the_folders_of_dead_owners_are_removed(tmp_path: Path) -> None:
    me = psutil.Process()
    dead = _folder(tmp_path, "dead", f"{_dead_pid()} 1700000000.0\n")
    reused = _folder(tmp_path, "reused", f"{me.pid} {me.create_time() - 3600!r}\n")
    alive = _folder(tmp_path, "alive", f"{me.pid} {me.create_time()!r}\n")
    unknown = _folder(tmp_path, "unknown", None)
    unreadable = _folder(tmp_path, "unreadable", "not a record")
    other = tmp_path / "not-ours"
    other.mkdir()

    removed = remove_dead_runtime_dirs(tmp_path)

    assert sorted(removed) == sorted([dead, reused])
    assert not dead.exists()
    assert not reused.exists()
    for kept in (alive, unknown, unreadable, other):
        assert kept.exists()


def test_a_start_removes_its_dead_predecessors_folders(tmp_path: Path) -> None:
    dead = _folder(tmp_path, "crashed", f"{_dead_pid()} 1700000000.0\n")

    mine = create_runtime_dir(tmp_path)

    assert not dead.exists()
    assert [path.name for path in tmp_path.iterdir()] == [mine.name]


def test_the_temporary_directory_is_the_default_base() -> None:
    folder = create_runtime_dir(None)
    try:
        assert folder.name.startswith(PREFIX)
    finally:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink()
        folder.rmdir()
