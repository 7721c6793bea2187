"""`credentials add/list/rename/remove/check` and `keys create/update --credential`, on a SQLite file."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from claude_code_api.cli import main
from claude_code_api.store.credentials import CredentialStore, StoredCredential
from tests.factories import FAKE_OAUTH_TOKEN, make_oauth_token
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic
from tests.integration.serve_harness import run_cli, serve_environment
from tests.integration.test_keys_cli import create, key_store, stored

CONSOLE_KEY = "sk-ant-api03-" + "k" * 60 + "9876"


def run(args: list[str], data_dir: Path, stdin: str | None = None) -> Result:
    env = {"DATA_DIR": str(data_dir), "DATABASE_URL": "", "SECRET_KEY": "", "CLAUDE_CODE_OAUTH_TOKEN": ""}
    return CliRunner().invoke(main, args, env=env, input=stdin, catch_exceptions=False)


def add(data_dir: Path, name: str, *options: str, stdin: str | None = None) -> Result:
    result = run(["credentials", "add", name, *options], data_dir, stdin)
    assert result.exit_code == 0, result.output
    return result


def upstream(data_dir: Path, name: str) -> StoredCredential:
    async def read() -> StoredCredential:
        async with key_store(data_dir) as keys:
            return await CredentialStore(keys._database, keys._cipher).upstream_credential(name)

    return asyncio.run(read())


def names(data_dir: Path) -> list[str]:
    output = run(["credentials", "list"], data_dir).output
    return [line.split()[0] for line in output.strip().splitlines()[1:]]


def test_add_reads_secrets_from_a_file_or_stdin_and_list_shows_none(tmp_path):
    key_file = tmp_path / "console.key"
    key_file.write_text(CONSOLE_KEY + "\n")
    add(tmp_path, "console", "--kind", "anthropic-api-key", "--api-key-file", str(key_file))
    add(tmp_path, "sub", "--kind", "subscription", "--oauth-token-file", "-", stdin=FAKE_OAUTH_TOKEN + "\n")
    add(
        tmp_path,
        "bedrock",
        "--kind",
        "bedrock",
        "--region",
        "us-east-1",
        "--access-key-id",
        "AKIAEXAMPLE",
        "--secret-access-key",
        "aws/secret/5555",
        "--sonnet-model",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    )

    listing = run(["credentials", "list"], tmp_path).output
    assert re.search(r"console +anthropic-api-key +…9876 +ok +0", listing)
    assert f"…{FAKE_OAUTH_TOKEN[-4:]}" in listing
    assert "sonnet=us.anthropic.claude-sonnet-4-5-20250929-v1:0" in listing
    for secret in (CONSOLE_KEY, FAKE_OAUTH_TOKEN, "aws/secret", "AKIAEXAMPLE"):
        assert secret not in listing
    assert upstream(tmp_path, "console").secrets.api_key == CONSOLE_KEY
    assert upstream(tmp_path, "sub").secrets.oauth_token == FAKE_OAUTH_TOKEN


def test_vertex_stores_the_credential_files_content(tmp_path):
    document = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/x",
        "token_url": "http://127.0.0.1:9/token",
        "credential_source": {"file": "/tmp/token"},
    }
    path = tmp_path / "google.json"
    path.write_text(json.dumps(document))
    add(
        tmp_path,
        "vertex",
        "--kind",
        "vertex",
        "--project",
        "p",
        "--region",
        "global",
        "--credentials-file",
        str(path),
    )
    path.unlink()
    assert json.loads(upstream(tmp_path, "vertex").secrets.google_credentials or "") == document


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--kind", "openai", "--api-key", "k"], "Unknown credential kind 'openai'"),
        (["--kind", "bedrock", "--api-key", "k"], "A bedrock credential needs --region"),
        (["--kind", "vertex", "--region", "r", "--project", "p", "--credentials-file", "{nf}"], "not JSON"),
        (
            ["--kind", "vertex", "--region", "r", "--project", "p", "--credentials-file", "{nc}"],
            "not a Google",
        ),
        (["--kind", "vertex", "--region", "r", "--credentials-file", "/absent.json"], "Cannot read"),
        (["--kind", "anthropic-api-key", "--api-key", "k", "--api-key-file", "-"], "not both"),
    ],
)
def test_bad_input_fails_in_one_line_and_stores_nothing(tmp_path, options, message):
    (tmp_path / "nf.json").write_text("type = service_account")
    (tmp_path / "nc.json").write_text('{"type": "authorized_user"}')
    options = [o.format(nf=tmp_path / "nf.json", nc=tmp_path / "nc.json") for o in options]
    result = run(["credentials", "add", "c", *options], tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert names(tmp_path) == []


def test_duplicate_name_is_refused(tmp_path):
    add(tmp_path, "console", "--kind", "anthropic-api-key", "--api-key", CONSOLE_KEY)
    result = run(
        ["credentials", "add", "console", "--kind", "subscription", "--oauth-token", FAKE_OAUTH_TOKEN],
        tmp_path,
    )
    assert result.exit_code == 1
    assert "exists already" in result.output
    assert names(tmp_path) == ["console"]


def test_keys_run_on_credentials_in_ranks(tmp_path):
    add(tmp_path, "a", "--kind", "subscription", "--oauth-token", FAKE_OAUTH_TOKEN)
    add(tmp_path, "b", "--kind", "anthropic-api-key", "--api-key", CONSOLE_KEY)
    add(tmp_path, "c", "--kind", "foundry", "--api-key", "foundry-key", "--resource", "acme")

    result = run(["keys", "create", "--name", "team", "--credential", "b,a", "--credential", "c"], tmp_path)
    assert result.exit_code == 0, result.output
    key_id = re.search(r"Created key (key_\w+) \(team\)\..*\nCredentials: a,b > c\.\n", result.output)
    assert key_id is not None
    assert stored(tmp_path, key_id.group(1)).credential_ranks == (("a", "b"), ("c",))
    assert "a,b > c" in run(["keys", "list"], tmp_path).output

    updated = run(["keys", "update", key_id.group(1), "--credential", "c"], tmp_path)
    assert updated.exit_code == 0, updated.output
    assert stored(tmp_path, key_id.group(1)).credential_ranks == (("c",),)


def test_a_rank_naming_an_unknown_credential_creates_no_key(tmp_path):
    add(tmp_path, "a", "--kind", "subscription", "--oauth-token", FAKE_OAUTH_TOKEN)
    result = run(["keys", "create", "--name", "team", "--credential", "a", "--credential", "ghost"], tmp_path)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: No credential named 'ghost': add it first (credentials add), or see `credentials list`."
    )
    assert run(["keys", "list"], tmp_path).output.strip().count("\n") == 0


def test_oauth_token_still_makes_a_key_on_a_subscription_of_its_own(tmp_path):
    key_id, result = create(tmp_path)
    assert f"Credentials: {key_id}-subscription." in result.output
    assert names(tmp_path) == [f"{key_id}-subscription"]


def test_rename_and_remove(tmp_path):
    add(tmp_path, "a", "--kind", "subscription", "--oauth-token", FAKE_OAUTH_TOKEN)
    result = run(["keys", "create", "--name", "team", "--credential", "a"], tmp_path)
    key_id = re.search(r"(key_\w+)", result.output).group(1)  # type: ignore[union-attr]

    assert run(["credentials", "rename", "a", "main"], tmp_path).output == "Renamed credential a to main.\n"
    refused = run(["credentials", "remove", "main"], tmp_path)
    assert refused.exit_code == 1
    assert f"used by key(s) {key_id} (team)" in refused.output
    assert run(["keys", "revoke", key_id], tmp_path).exit_code == 0
    assert run(["credentials", "remove", "main"], tmp_path).exit_code == 0
    assert names(tmp_path) == []
    missing = run(["credentials", "remove", "main"], tmp_path)
    assert (missing.exit_code, missing.output.strip()) == (
        1,
        "Error: No credential named 'main'; `credentials list` shows them.",
    )


def test_check_names_a_credential_it_cannot_read_without_calling_upstream(tmp_path):
    missing = run(["credentials", "check", "ghost"], tmp_path)
    assert missing.exit_code == 1
    assert "No credential named 'ghost'" in missing.output


def test_check_calls_upstream_once_per_credential_and_fails_on_a_rejection(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    env = serve_environment(tmp_path, mock_anthropic.url)
    good, bad = make_oauth_token(), make_oauth_token()
    url = mock_anthropic.url
    for args in (
        ("good", "--kind", "subscription", "--oauth-token", good),
        ("bad", "--kind", "subscription", "--oauth-token", bad),
        ("console", "--kind", "anthropic-api-key", "--api-key", CONSOLE_KEY, "--base-url", url),
        ("foundry", "--kind", "foundry", "--api-key", "foundry-key", "--base-url", f"{url}/anthropic"),
    ):
        assert run_cli(env, "credentials", "add", *args).returncode == 0
    mock_anthropic.always(ErrorReply.unauthorized(), credential=bad)

    everything = run_cli(env, "credentials", "check")

    assert everything.returncode == 1
    lines = everything.stdout.splitlines()
    assert "console (anthropic-api-key): ok: accepted upstream" in lines
    assert "foundry (foundry): ok: accepted upstream" in lines
    assert "good (subscription): ok: accepted upstream" in lines
    assert next(line for line in lines if line.startswith("bad (subscription): PROBLEM"))
    assert "1 credential(s) failed their check" in everything.stderr
    for secret in (good, bad, CONSOLE_KEY, "foundry-key"):
        assert secret not in everything.stdout + everything.stderr
    requests = mock_anthropic.model_requests
    assert {r.credential for r in requests} == {good, bad, CONSOLE_KEY, "foundry-key"}
    assert [r.credential for r in requests if r.credential != bad].count(good) == 1
    assert all(r.body["max_tokens"] == 1 for r in requests)

    mock_anthropic.reset()
    one = run_cli(env, "credentials", "check", "console")
    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.strip() == "console (anthropic-api-key): ok: accepted upstream"
    assert [r.credential for r in mock_anthropic.model_requests] == [CONSOLE_KEY]
