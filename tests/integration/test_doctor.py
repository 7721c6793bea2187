"""`claude-code-api doctor` and the token health that `keys list` shows."""

from __future__ import annotations

from pathlib import Path

from tests.factories import make_oauth_token
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, Reply
from tests.integration.serve_harness import run_cli, serve_environment


def test_doctor_reports_each_check_and_passes_on_a_sound_setup(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    assert run_cli(env, "generate-certs").returncode == 0

    result = run_cli(env, "doctor")

    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("configuration", "data directory", "claude code", "certificate", "redis", "database"):
        assert check in result.stdout
    assert "PROBLEM" not in result.stdout


def test_doctor_fails_on_an_unreachable_redis(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    env["REDIS_URL"] = "redis://127.0.0.1:9/0"

    result = run_cli(env, "doctor")

    assert result.returncode != 0
    assert "redis" in result.stdout
    assert "PROBLEM" in result.stdout


def test_check_tokens_sends_one_request_per_key_and_records_a_rejection(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    env = serve_environment(tmp_path, mock_anthropic.url)
    good, bad = make_oauth_token(), make_oauth_token()
    assert run_cli(env, "keys", "create", "--name", "good", "--oauth-token", good).returncode == 0
    assert run_cli(env, "keys", "create", "--name", "bad", "--oauth-token", bad).returncode == 0
    mock_anthropic.always(
        lambda request: ErrorReply.unauthorized() if request.bearer_token == bad else Reply(text="OK")
    )

    result = run_cli(env, "doctor", "--check-tokens")

    assert result.returncode != 0
    assert "accepted upstream" in result.stdout
    assert "claude setup-token" in result.stdout
    tokens = {request.bearer_token for request in mock_anthropic.message_requests}
    assert tokens == {good, bad}
    listed = run_cli(env, "keys", "list").stdout
    good_line = next(line for line in listed.splitlines() if " good " in line)
    bad_line = next(line for line in listed.splitlines() if " bad " in line)
    assert " ok " in good_line
    assert "rejected" in bad_line
    assert "claude setup-token" in listed
