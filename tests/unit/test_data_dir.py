"""Tests of security/data_dir.py: DATA_DIR private to its owner, made so at start."""

from __future__ import annotations

import stat
from pathlib import Path

from claude_code_api.security.data_dir import create_private_file, secure_data_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_an_open_data_dir_and_everything_in_it_is_made_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "certs").mkdir(parents=True)
    for name in ("claude-code-api.db", "claude-code-api.db-wal", "certs/cert.pem"):
        (data_dir / name).write_text("x")
        (data_dir / name).chmod(0o644)
    data_dir.chmod(0o755)
    (data_dir / "certs").chmod(0o755)

    changed = secure_data_dir(data_dir)

    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "certs") == 0o700
    for name in ("claude-code-api.db", "claude-code-api.db-wal", "certs/cert.pem"):
        assert _mode(data_dir / name) == 0o600
    assert len(changed) == 5
    assert f"{data_dir}: mode 755 -> 700" in changed


def test_a_private_data_dir_is_left_as_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    (tmp_path / "secret_key").write_text("x")
    (tmp_path / "secret_key").chmod(0o400)

    assert secure_data_dir(tmp_path) == []
    assert _mode(tmp_path / "secret_key") == 0o400


def test_a_link_to_a_file_elsewhere_is_not_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared.pem"
    shared.write_text("x")
    shared.chmod(0o644)
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "cert.pem").symlink_to(shared)

    assert secure_data_dir(data_dir) == []
    assert _mode(shared) == 0o644


def test_a_missing_data_dir_is_left_to_be_created(tmp_path: Path) -> None:
    assert secure_data_dir(tmp_path / "absent") == []


def test_a_private_file_is_created_owner_only_and_an_existing_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    create_private_file(path)
    assert _mode(path) == 0o600
    path.write_text("kept")
    create_private_file(path)
    assert path.read_text() == "kept"
