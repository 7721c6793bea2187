"""`claude-code-api doctor` and the token health that `keys list` and the dashboard show."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import openai
import pytest

from claude_code_api.store.keys import TokenHealth
from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer
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


def test_doctor_reports_a_malformed_model_table_in_data_dir(tmp_path: Path) -> None:
    env = serve_environment(tmp_path, "http://127.0.0.1:9")
    data_dir = Path(env["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models.toml").write_text("[openai]\ngpt-4 = 'x'\n")

    result = run_cli(env, "doctor")

    assert result.returncode != 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("model table")]
    assert "PROBLEM" in line
    assert "[openai] is not a credential kind" in line


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


def _ask(server: GatewayServer, key: str) -> None:
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "hi"}])


def _token_health(server: GatewayServer, key_id: str) -> TokenHealth:
    assert server.gateway is not None
    deadline = time.monotonic() + 5
    while True:
        key = server.call(server.gateway.keys.get_key(key_id))
        assert key is not None
        if key.token_health.state != "unknown" or time.monotonic() > deadline:
            return key.token_health
        time.sleep(0.05)


def test_a_rejected_token_is_recorded_on_its_key_with_advice(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    record, key = gateway_server.create_key()
    mock_anthropic.always(ErrorReply.unauthorized())

    with pytest.raises(openai.APIStatusError):
        _ask(gateway_server, key)

    health = _token_health(gateway_server, record.id)
    assert health.state == "rejected"
    assert "claude setup-token" in health.detail


def test_a_subscription_usage_limit_is_recorded_with_its_reset_time(
    gateway_server: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    record, key = gateway_server.create_key()
    reset = int(time.time()) + 3600
    mock_anthropic.always(ErrorReply.usage_limit(reset))

    with pytest.raises(openai.RateLimitError):
        _ask(gateway_server, key)

    health = _token_health(gateway_server, record.id)
    assert health.state == "limited"
    assert datetime.fromtimestamp(reset, UTC).isoformat(timespec="seconds") in health.detail


def test_a_working_token_is_recorded_as_ok(gateway_server: GatewayServer) -> None:
    record, key = gateway_server.create_key()

    _ask(gateway_server, key)

    assert _token_health(gateway_server, record.id).state == "ok"


def test_check_tokens_checks_each_credential_once_and_a_key_with_one_good_credential_is_ok(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    env = serve_environment(tmp_path, mock_anthropic.url)
    good, bad, spare = make_oauth_token(), make_oauth_token(), make_oauth_token()
    for name, token in (("good", good), ("bad", bad), ("spare", spare)):
        added = run_cli(env, "credentials", "add", name, "--kind", "subscription", "--oauth-token", token)
        assert added.returncode == 0, added.stderr
    created = run_cli(env, "keys", "create", "--name", "team", "--credential", "bad", "--credential", "good")
    assert created.returncode == 0, created.stderr
    mock_anthropic.always(ErrorReply.unauthorized(), credential=bad)

    result = run_cli(env, "doctor", "--check-tokens")

    assert result.returncode != 0
    lines = result.stdout.splitlines()
    for name in ("good", "spare"):
        assert any(
            line.startswith(f"credential {name} (subscription)") and "accepted upstream" in line
            for line in lines
        )
    assert any(line.startswith("credential bad (subscription)") and "PROBLEM" in line for line in lines)
    assert {request.bearer_token for request in mock_anthropic.message_requests} == {good, bad, spare}
    team_line = next(line for line in run_cli(env, "keys", "list").stdout.splitlines() if " team " in line)
    assert " ok " in team_line
