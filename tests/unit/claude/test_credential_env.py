"""credential_environment: each kind's CLI variables, the rest emptied; bad fields refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from claude_code_api.claude.credential_env import (
    CREDENTIAL_VARIABLES,
    ModelPins,
    UpstreamCredential,
    credential_environment,
    write_credential_files,
)

FOLDER = Path("/run/claude/p1")
EXTERNAL_ACCOUNT = json.dumps(
    {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {"file": "/run/subject"},
    }
)


def _set(credential: UpstreamCredential) -> dict[str, str]:
    variables = credential_environment(credential, FOLDER).variables
    return {name: value for name, value in variables.items() if value}


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        pytest.param(
            UpstreamCredential("subscription", secret="sk-ant-oat01-x"),
            {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-x"},
            id="subscription",
        ),
        pytest.param(
            UpstreamCredential("anthropic-api-key", secret="sk-ant-api03-x", base_url="http://h"),
            {"ANTHROPIC_API_KEY": "sk-ant-api03-x", "ANTHROPIC_BASE_URL": "http://h"},
            id="console-api-key",
        ),
        pytest.param(
            UpstreamCredential("bedrock", secret="bedrock-key", region="eu-west-1"),
            {
                "CLAUDE_CODE_USE_BEDROCK": "1",
                "AWS_REGION": "eu-west-1",
                "AWS_BEARER_TOKEN_BEDROCK": "bedrock-key",
            },
            id="bedrock-api-key",
        ),
        pytest.param(
            UpstreamCredential(
                "bedrock",
                access_key_id="AKIA1",
                secret_access_key="s3cret",
                session_token="sess",
                region="us-east-1",
                base_url="http://b",
            ),
            {
                "CLAUDE_CODE_USE_BEDROCK": "1",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "AKIA1",
                "AWS_SECRET_ACCESS_KEY": "s3cret",
                "AWS_SESSION_TOKEN": "sess",
                "ANTHROPIC_BEDROCK_BASE_URL": "http://b",
            },
            id="bedrock-access-keys",
        ),
        pytest.param(
            UpstreamCredential(
                "vertex", credentials_json=EXTERNAL_ACCOUNT, project="p", region="europe-west4"
            ),
            {
                "CLAUDE_CODE_USE_VERTEX": "1",
                "ANTHROPIC_VERTEX_PROJECT_ID": "p",
                "CLOUD_ML_REGION": "europe-west4",
                "GOOGLE_APPLICATION_CREDENTIALS": "/run/claude/p1/google-credentials.json",
            },
            id="vertex",
        ),
        pytest.param(
            UpstreamCredential("foundry", secret="f-key", resource="my-resource"),
            {
                "CLAUDE_CODE_USE_FOUNDRY": "1",
                "ANTHROPIC_FOUNDRY_API_KEY": "f-key",
                "ANTHROPIC_FOUNDRY_RESOURCE": "my-resource",
            },
            id="foundry-resource",
        ),
        pytest.param(
            UpstreamCredential(
                "foundry", secret="f-key", base_url="https://r.services.ai.azure.com/anthropic"
            ),
            {
                "CLAUDE_CODE_USE_FOUNDRY": "1",
                "ANTHROPIC_FOUNDRY_API_KEY": "f-key",
                "ANTHROPIC_FOUNDRY_BASE_URL": "https://r.services.ai.azure.com/anthropic",
            },
            id="foundry-base-url",
        ),
    ],
)
def test_each_kind_sets_only_its_own_variables(credential, expected):
    assert _set(credential) == expected


@pytest.mark.parametrize(
    "credential",
    [
        UpstreamCredential("subscription", secret="t"),
        UpstreamCredential("bedrock", secret="k", region="r"),
        UpstreamCredential("vertex", credentials_json=EXTERNAL_ACCOUNT, project="p", region="r"),
    ],
)
def test_every_other_credential_variable_is_emptied(credential):
    variables = credential_environment(credential, FOLDER).variables
    assert tuple(variables) == CREDENTIAL_VARIABLES
    assert variables["ANTHROPIC_API_KEY"] == "" or credential.kind == "anthropic-api-key"


def test_model_pins_become_the_model_variables():
    pins = ModelPins(default="m0", opus="m1", sonnet="m2", haiku="m3")
    credential = UpstreamCredential("bedrock", secret="k", region="r", models=pins)
    variables = _set(credential)
    assert variables["ANTHROPIC_MODEL"] == "m0"
    assert variables["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "m1"
    assert variables["ANTHROPIC_DEFAULT_SONNET_MODEL"] == "m2"
    assert variables["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "m3"


def test_vertex_returns_its_credential_file_to_write():
    credential = UpstreamCredential("vertex", credentials_json=EXTERNAL_ACCOUNT, project="p", region="r")
    assert credential_environment(credential, FOLDER).files == {
        FOLDER / "google-credentials.json": EXTERNAL_ACCOUNT
    }
    assert credential_environment(UpstreamCredential("subscription", secret="t"), FOLDER).files == {}


def test_credential_files_are_written_for_their_owner_only(tmp_path):
    credential = UpstreamCredential("vertex", credentials_json=EXTERNAL_ACCOUNT, project="p", region="r")
    environment = credential_environment(credential, tmp_path)
    (tmp_path / "google-credentials.json").write_text("old, wider")
    (tmp_path / "google-credentials.json").chmod(0o644)
    write_credential_files(environment)
    path = tmp_path / "google-credentials.json"
    assert path.read_text() == EXTERNAL_ACCOUNT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secrets_stay_out_of_the_repr():
    credential = UpstreamCredential(
        "bedrock",
        access_key_id="AKIA1",
        secret_access_key="s3cret-value",
        session_token="sess-value",
        region="r",
    )
    shown = repr(credential) + repr(credential_environment(credential, FOLDER))
    assert "s3cret-value" not in shown
    assert "sess-value" not in shown


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "openai"}, "unknown kind"),
        ({"kind": "subscription"}, "needs its secret"),
        ({"kind": "anthropic-api-key", "secret": "k", "region": "r"}, "region and project"),
        ({"kind": "bedrock", "secret": "k"}, "needs a region"),
        ({"kind": "bedrock", "region": "r"}, "needs a Bedrock API key"),
        ({"kind": "bedrock", "region": "r", "access_key_id": "A"}, "needs a Bedrock API key"),
        ({"kind": "bedrock", "region": "r", "secret": "k", "access_key_id": "A"}, "not both"),
        ({"kind": "bedrock", "region": "r", "secret": "k", "session_token": "s"}, "session token"),
        ({"kind": "vertex", "project": "p", "credentials_json": EXTERNAL_ACCOUNT}, "project and a region"),
        ({"kind": "vertex", "project": "p", "region": "r"}, "needs a Google credential file"),
        ({"kind": "vertex", "project": "p", "region": "r", "credentials_json": "{nope"}, "not JSON"),
        (
            {"kind": "vertex", "project": "p", "region": "r", "credentials_json": "{}"},
            "not a Google credential",
        ),
        ({"kind": "foundry", "secret": "k"}, "resource or a base URL"),
        ({"kind": "foundry", "resource": "r"}, "needs its API key"),
        ({"kind": "subscription", "secret": "t", "access_key_id": "A"}, "belong to a bedrock"),
        (
            {"kind": "foundry", "secret": "k", "resource": "r", "credentials_json": "{}"},
            "belongs to a vertex",
        ),
    ],
)
def test_bad_fields_are_refused_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        UpstreamCredential(**fields)
