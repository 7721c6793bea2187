"""DATA_DIR as the commands leave it: 0700, and 0600 for everything in it, from creation and at start."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.factories import make_oauth_token
from tests.integration.mock_anthropic import MockAnthropic
from tests.integration.serve_harness import Served, create_key, run_cli, serve_environment


def _open_to_others(data_dir: Path) -> list[str]:
    return [
        f"{path} {stat.S_IMODE(path.stat().st_mode):o}"
        for path in [data_dir, *data_dir.rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    ]


def test_data_dir_is_created_owner_only_with_every_file_in_it(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    data_dir = Path(env["DATA_DIR"])
    assert run_cli(env, "generate-certs").returncode == 0
    create_key(env, "k", make_oauth_token())

    assert (data_dir / "claude-code-api.db").exists()
    assert _open_to_others(data_dir) == []


def test_serve_makes_an_open_data_dir_private_at_start(tmp_path: Path, mock_anthropic: MockAnthropic) -> None:
    env = serve_environment(tmp_path, mock_anthropic.url)
    data_dir = Path(env["DATA_DIR"])
    create_key(env, "k", make_oauth_token())
    data_dir.chmod(0o755)
    (data_dir / "claude-code-api.db").chmod(0o644)
    assert _open_to_others(data_dir)

    server = Served(env)
    try:
        server.wait_healthy()
        assert _open_to_others(data_dir) == []
    finally:
        server.stop()
