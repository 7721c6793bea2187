"""The real Claude Code CLI on each kind of upstream credential, against the mock.

Each test builds the CLI's environment with `credential_environment` (the gateway's own function)
and checks what reached the mock: path, authentication, model id, region and project, and that the
CLI decoded the kind's stream into the scripted answer. See shared/CLAUDE-CODE.md §13.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    ClaudeAgentOptions,
    Message,
    RateLimitEvent,
    ResultError,
    ResultMessage,
    SystemMessage,
    query,
)

from claude_code_api.claude.credential_env import (
    ModelPins,
    UpstreamCredential,
    credential_environment,
    write_credential_files,
)
from tests.integration.mock_anthropic import (
    ErrorReply,
    MockAnthropic,
    Quota,
    Reply,
    google_access_token,
)

AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/prov"
TEXT = "Réponse en plusieurs morceaux"
BEDROCK_PINS = ModelPins(
    default="eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    opus="eu.anthropic.claude-opus-4-1-20250805-v1:0",
    sonnet="eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    haiku="eu.anthropic.claude-haiku-4-5-20251001-v1:0",
)
VERTEX_PINS = ModelPins(
    default="claude-sonnet-4-5@20250929",
    opus="claude-opus-4-1@20250805",
    sonnet="claude-sonnet-4-5@20250929",
    haiku="claude-haiku-4-5@20251001",
)


async def _run(
    credential: UpstreamCredential, tmp_path: Path, *, expect_error: bool = False
) -> tuple[list[Message], ResultMessage]:
    """One `query()` of the bundled CLI with the credential's environment, offline."""
    home, cwd, private = tmp_path / "home", tmp_path / "cwd", tmp_path / "private"
    for folder in (home, cwd, private):
        folder.mkdir(parents=True, exist_ok=True)
    environment = credential_environment(credential, private)
    write_credential_files(environment)
    options = ClaudeAgentOptions(
        env={
            **environment.variables,
            "HOME": str(home),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        },
        cwd=cwd,
        tools=[],
        setting_sources=[],
        model="sonnet",
        extra_args={"no-session-persistence": None},
    )
    messages: list[Message] = []
    if expect_error:
        # The SDK raises after yielding the error result (CLAUDE-CODE.md §8).
        with pytest.raises(ResultError):
            await _collect(options, messages)
    else:
        await _collect(options, messages)
    [result] = [m for m in messages if isinstance(m, ResultMessage)]
    return messages, result


async def _collect(options: ClaudeAgentOptions, into: list[Message]) -> None:
    async for message in query(prompt="hello", options=options):
        into.append(message)


def _rate_limits(messages: list[Message]) -> list[RateLimitEvent]:
    return [m for m in messages if isinstance(m, RateLimitEvent)]


def _init_model(messages: list[Message]) -> Any:
    [init] = [m for m in messages if isinstance(m, SystemMessage) and m.subtype == "init"]
    return init.data["model"]


def external_account(mock: MockAnthropic, tmp_path: Path, subject: str) -> str:
    """A Google external-account credential whose token exchange is the mock's."""
    subject_file = tmp_path / "subject-token"
    subject_file.write_text(subject)
    return json.dumps(
        {
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{mock.url}/token",
            "credential_source": {"file": str(subject_file)},
        }
    )


# --- first party: subscription, Console API key, Foundry -----------------------------------------


async def test_subscription_token_goes_as_bearer_to_messages(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.queue(Reply(text=TEXT), credential="sk-ant-oat01-sub")
    credential = UpstreamCredential("subscription", secret="sk-ant-oat01-sub", base_url=mock_anthropic.url)

    _, result = await _run(credential, tmp_path)

    assert result.result == TEXT
    [request] = mock_anthropic.requests
    assert (request.kind, request.auth_scheme, request.credential) == (
        "messages",
        "bearer",
        "sk-ant-oat01-sub",
    )
    assert "oauth-2025-04-20" in request.headers["anthropic-beta"]
    assert "x-api-key" not in request.headers


async def test_console_api_key_goes_as_x_api_key(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.queue(Reply(text=TEXT), credential="sk-ant-api03-console")
    credential = UpstreamCredential(
        "anthropic-api-key", secret="sk-ant-api03-console", base_url=mock_anthropic.url
    )

    messages, result = await _run(credential, tmp_path)

    assert result.result == TEXT
    [request] = mock_anthropic.requests
    assert (request.kind, request.auth_scheme, request.credential) == (
        "messages",
        "x-api-key",
        "sk-ant-api03-console",
    )
    assert "authorization" not in request.headers
    assert "oauth-2025-04-20" not in request.headers["anthropic-beta"]
    assert _init_model(messages) == "claude-sonnet-5-5"


async def test_foundry_posts_messages_under_its_base_url_with_x_api_key(
    mock_anthropic: MockAnthropic, tmp_path
):
    mock_anthropic.queue(Reply(text=TEXT), credential="foundry-key")
    # A Foundry base URL is https://<resource>.services.ai.azure.com/anthropic.
    credential = UpstreamCredential(
        "foundry", secret="foundry-key", base_url=f"{mock_anthropic.url}/anthropic"
    )

    _, result = await _run(credential, tmp_path)

    assert result.result == TEXT
    [request] = mock_anthropic.requests
    assert (request.path, request.auth_scheme, request.credential) == (
        "/anthropic/v1/messages",
        "x-api-key",
        "foundry-key",
    )
    assert request.streamed


# --- Amazon Bedrock ------------------------------------------------------------------------------


async def test_bedrock_api_key_streams_event_stream_frames(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.queue(Reply(text=TEXT, chunk_size=3), credential="bedrock-api-key")
    credential = UpstreamCredential(
        "bedrock",
        secret="bedrock-api-key",
        region="eu-west-1",
        base_url=mock_anthropic.url,
        models=BEDROCK_PINS,
    )

    messages, result = await _run(credential, tmp_path)

    assert result.result == TEXT
    assert _init_model(messages) == BEDROCK_PINS.sonnet
    # Pinned: the profile list is still read once, but no model is probed.
    assert [r.kind for r in mock_anthropic.requests] == ["bedrock_profiles", "bedrock"]
    [request] = mock_anthropic.model_requests
    assert request.path == f"/model/{BEDROCK_PINS.sonnet}/invoke-with-response-stream"
    assert (request.auth_scheme, request.credential, request.model) == (
        "bearer",
        "bedrock-api-key",
        BEDROCK_PINS.sonnet,
    )
    assert request.body["anthropic_version"] == "bedrock-2023-05-31"
    assert request.body.get("tools", []) == []  # tools=[]: none of Claude Code's own
    assert "model" not in request.body
    assert "stream" not in request.body


async def test_bedrock_access_keys_sign_with_sigv4(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.add_aws_key("AKIAMOCKEXAMPLE", "secret-access-key")
    mock_anthropic.queue(Reply(text=TEXT), credential="AKIAMOCKEXAMPLE")
    credential = UpstreamCredential(
        "bedrock",
        access_key_id="AKIAMOCKEXAMPLE",
        secret_access_key="secret-access-key",
        session_token="session-token",
        region="eu-central-1",
        base_url=mock_anthropic.url,
        models=BEDROCK_PINS,
    )

    _, result = await _run(credential, tmp_path)

    assert result.result == TEXT
    [request] = mock_anthropic.model_requests
    assert request.signature_valid is True
    assert request.sigv4 is not None
    assert (request.sigv4.access_key_id, request.sigv4.region, request.sigv4.service) == (
        "AKIAMOCKEXAMPLE",
        "eu-central-1",
        "bedrock",
    )
    assert request.sigv4.date == request.headers["x-amz-date"][:8]
    assert request.headers["x-amz-security-token"] == "session-token"
    assert request.model == BEDROCK_PINS.sonnet


async def test_bedrock_with_the_wrong_secret_is_refused(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.add_aws_key("AKIAMOCKEXAMPLE", "the-right-secret")
    credential = UpstreamCredential(
        "bedrock",
        access_key_id="AKIAMOCKEXAMPLE",
        secret_access_key="a-wrong-secret",
        region="eu-central-1",
        base_url=mock_anthropic.url,
        models=BEDROCK_PINS,
    )

    _, result = await _run(credential, tmp_path, expect_error=True)

    assert result.is_error
    assert result.api_error_status == 403
    assert {r.signature_valid for r in mock_anthropic.model_requests} == {False}


async def test_unpinned_bedrock_lists_profiles_and_probes_three_models(
    mock_anthropic: MockAnthropic, tmp_path
):
    credential = UpstreamCredential(
        "bedrock", secret="bedrock-api-key", region="eu-west-1", base_url=mock_anthropic.url
    )

    messages, result = await _run(credential, tmp_path)

    assert (result.result or "").startswith("Echo: ")
    calls = [
        (r.method, r.path.rsplit("/", 1)[-1], r.body and r.body.get("max_tokens"))
        for r in mock_anthropic.requests
    ]
    assert calls[0] == ("GET", "inference-profiles", None)
    assert calls[1:4] == [("POST", "invoke", 1)] * 3
    assert calls[4][1] == "invoke-with-response-stream"
    probed = [r.model for r in mock_anthropic.requests[1:4]]
    assert [(m or "").split(".")[0] for m in probed] == ["eu", "eu", "eu"]
    assert _init_model(messages) == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


# --- Google Vertex AI ----------------------------------------------------------------------------


async def test_vertex_external_account_exchanges_a_token_then_streams(
    mock_anthropic: MockAnthropic, tmp_path
):
    token = google_access_token("subject-token-1")
    mock_anthropic.queue(Reply(text=TEXT), credential=token)
    credential = UpstreamCredential(
        "vertex",
        credentials_json=external_account(mock_anthropic, tmp_path, "subject-token-1"),
        project="project-1",
        region="europe-west4",
        base_url=f"{mock_anthropic.url}/v1",
        models=VERTEX_PINS,
    )

    _, result = await _run(credential, tmp_path)

    assert result.result == TEXT
    assert [r.kind for r in mock_anthropic.requests] == ["token", "vertex"]
    exchanges = [r for r in mock_anthropic.requests if r.kind == "token"]
    assert exchanges[0].headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert exchanges[0].form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": AUDIENCE,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token": "subject-token-1",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    }
    [request] = mock_anthropic.model_requests
    assert request.path == (
        f"/v1/projects/project-1/locations/europe-west4/publishers/anthropic/models/{VERTEX_PINS.sonnet}"
        ":streamRawPredict"
    )
    assert (request.project, request.region, request.model) == (
        "project-1",
        "europe-west4",
        VERTEX_PINS.sonnet,
    )
    assert (request.auth_scheme, request.credential) == ("bearer", token)
    assert request.body["anthropic_version"] == "vertex-2023-10-16"
    assert request.body.get("tools", []) == []  # tools=[]: none of Claude Code's own
    assert "model" not in request.body


async def test_unpinned_vertex_probes_three_models_with_raw_predict(mock_anthropic: MockAnthropic, tmp_path):
    credential = UpstreamCredential(
        "vertex",
        credentials_json=external_account(mock_anthropic, tmp_path, "subject-token-2"),
        project="project-2",
        region="us-east5",
        base_url=f"{mock_anthropic.url}/v1",
    )

    _, result = await _run(credential, tmp_path)

    assert (result.result or "").startswith("Echo: ")
    calls = [(r.path.rsplit(":", 1)[-1], r.body["max_tokens"]) for r in mock_anthropic.model_requests]
    assert calls[:3] == [("rawPredict", 1)] * 3
    assert calls[3][0] == "streamRawPredict"
    assert len(calls) == 4


async def test_a_refused_vertex_token_exchange_ends_in_an_error_without_a_call(
    mock_anthropic: MockAnthropic, tmp_path
):
    mock_anthropic.refuse_subject_token("subject-token-3")
    credential = UpstreamCredential(
        "vertex",
        credentials_json=external_account(mock_anthropic, tmp_path, "subject-token-3"),
        project="project-3",
        region="us-east5",
        base_url=f"{mock_anthropic.url}/v1",
        models=VERTEX_PINS,
    )

    _, result = await _run(credential, tmp_path, expect_error=True)

    # No HTTP status to map: the failure is the credential's, named in the (unforwardable) prose.
    assert result.api_error_status is None
    assert "Could not load Google Cloud credentials" in (result.result or "")
    assert mock_anthropic.model_requests == []
    assert {r.kind for r in mock_anthropic.requests} == {"token"}


async def test_a_refused_bedrock_api_key_is_a_401_result(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.always(ErrorReply.unauthorized(), credential="revoked-bedrock-key")
    credential = UpstreamCredential(
        "bedrock",
        secret="revoked-bedrock-key",
        region="eu-west-1",
        base_url=mock_anthropic.url,
        models=BEDROCK_PINS,
    )

    _, result = await _run(credential, tmp_path, expect_error=True)

    assert result.api_error_status == 401
    assert {r.credential for r in mock_anthropic.model_requests} == {"revoked-bedrock-key"}


# --- subscription quota: what Claude Code makes of the unified headers ---------------------------

RESET = 1_900_000_000


async def test_quota_headers_become_a_rate_limit_event_with_windows(mock_anthropic: MockAnthropic, tmp_path):
    # Measured: resets years ahead make the CLI leave `unifiedWindows` out; hours or days ahead, kept.
    five_hour_reset, week_reset = int(time.time()) + 3600, int(time.time()) + 5 * 86400
    mock_anthropic.set_quota(
        "sk-ant-oat01-q",
        Quota(
            reset=five_hour_reset,
            five_hour_status="allowed",
            five_hour_utilization=0.42,
            five_hour_reset=five_hour_reset,
            seven_day_status="allowed",
            seven_day_utilization=0.13,
            seven_day_reset=week_reset,
            overage_status="rejected",
            overage_disabled_reason="org_level_disabled",
        ),
    )
    credential = UpstreamCredential("subscription", secret="sk-ant-oat01-q", base_url=mock_anthropic.url)

    messages, _ = await _run(credential, tmp_path)

    [event] = _rate_limits(messages)
    info = event.rate_limit_info
    assert (info.status, info.resets_at, info.rate_limit_type, info.utilization) == (
        "allowed",
        five_hour_reset,
        "five_hour",
        None,
    )
    assert (info.overage_status, info.overage_disabled_reason) == ("rejected", "org_level_disabled")
    assert info.raw["isUsingOverage"] is False
    assert info.raw["unifiedWindows"] == {
        "five_hour": {"utilization": 0.42, "resetsAt": five_hour_reset, "status": "allowed"},
        "seven_day": {"utilization": 0.13, "resetsAt": week_reset, "status": "allowed"},
    }


async def test_usage_limit_429_for_one_credential_is_a_rejected_event_and_an_error(
    mock_anthropic: MockAnthropic, tmp_path
):
    mock_anthropic.set_quota("sk-ant-oat01-a", Quota.exhausted(RESET))
    mock_anthropic.always(ErrorReply.usage_limit(RESET), credential="sk-ant-oat01-a")
    credential = UpstreamCredential("subscription", secret="sk-ant-oat01-a", base_url=mock_anthropic.url)

    messages, result = await _run(credential, tmp_path, expect_error=True)

    assert result.api_error_status == 429
    assert (result.result or "").startswith("You've hit your 5-hour limit")
    [event] = _rate_limits(messages)
    info = event.rate_limit_info
    assert (info.status, info.resets_at, info.rate_limit_type) == ("rejected", RESET, "five_hour")
    assert info.raw["isUsingOverage"] is False
    assert len(mock_anthropic.model_requests) == 1


async def test_an_answer_billed_as_extra_usage_succeeds_with_overage_in_use(
    mock_anthropic: MockAnthropic, tmp_path
):
    mock_anthropic.set_quota("sk-ant-oat01-c", Quota.extra_usage(RESET))
    credential = UpstreamCredential("subscription", secret="sk-ant-oat01-c", base_url=mock_anthropic.url)

    messages, result = await _run(credential, tmp_path)

    assert not result.is_error
    [event] = _rate_limits(messages)
    info = event.rate_limit_info
    assert (info.status, info.resets_at, info.rate_limit_type, info.overage_status) == (
        "rejected",
        RESET,
        "five_hour",
        "allowed",
    )
    assert info.raw["isUsingOverage"] is True
    assert info.raw["overageInUse"] is True


async def test_credential_a_failing_does_not_touch_credential_b(mock_anthropic: MockAnthropic, tmp_path):
    mock_anthropic.always(ErrorReply.usage_limit(RESET), credential="sk-ant-oat01-a")
    mock_anthropic.always(Reply(text="B answers"), credential="sk-ant-api03-b")

    await _run(
        UpstreamCredential("subscription", secret="sk-ant-oat01-a", base_url=mock_anthropic.url),
        tmp_path / "a",
        expect_error=True,
    )
    _, result = await _run(
        UpstreamCredential("anthropic-api-key", secret="sk-ant-api03-b", base_url=mock_anthropic.url),
        tmp_path / "b",
    )

    assert result.result == "B answers"
    assert [r.credential for r in mock_anthropic.model_requests] == ["sk-ant-oat01-a", "sk-ant-api03-b"]
