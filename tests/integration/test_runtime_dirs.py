"""Runtime folders after a crash: the next `serve` removes those its killed predecessor left."""

from __future__ import annotations

import signal
from pathlib import Path

from claude_code_api.runtime_dirs import PREFIX
from tests.integration.mock_anthropic import MockAnthropic
from tests.integration.serve_harness import Served, serve_environment


def test_serve_removes_the_runtime_folder_of_a_killed_predecessor(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    env = serve_environment(tmp_path, mock_anthropic.url)
    run_dir = Path(env["RUN_DIR"])
    crashed = Served(env).wait_healthy()
    (left,) = run_dir.glob(f"{PREFIX}*")
    crashed.process.send_signal(signal.SIGKILL)
    crashed.stop()
    assert left.exists()

    server = Served(env).wait_healthy()
    try:
        assert not left.exists()
        assert len(list(run_dir.glob(f"{PREFIX}*"))) == 1
    finally:
        server.stop()
