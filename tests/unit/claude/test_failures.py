"""Claude Code's failed results as the gateway's errors: the status, the code, the wait, never the prose."""

from __future__ import annotations

import pytest
from claude_agent_sdk import RateLimitInfo, ResultMessage

from claude_code_api.claude.failures import DEFAULT_RETRY_AFTER_SECONDS, error_from_result
from claude_code_api.errors import (
    ClaudeUnavailableError,
    ContextLengthExceededError,
    InvalidRequestError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamRateLimitError,
    UsageLimitError,
)

NOW = 1_800_000_000.0


def failed(status: int | None, text: str = "API Error", reason: str = "api_error") -> ResultMessage:
    return ResultMessage(
        subtype="success",
        duration_ms=1,
        duration_api_ms=1,
        is_error=True,
        num_turns=1,
        session_id="s",
        result=text,
        api_error_status=status,
        terminal_reason=reason,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, UpstreamAuthenticationError),
        (403, UpstreamAuthenticationError),
        (529, ClaudeUnavailableError),
        (400, InvalidRequestError),
        (500, UpstreamError),
    ],
)
def test_an_upstream_status_maps_to_its_error(status, kind):
    assert type(error_from_result(failed(status), None, NOW)) is kind


def test_a_plain_429_passes_on_the_wait_claude_code_took():
    error = error_from_result(failed(429), None, NOW, retry_after=2.5)
    assert type(error) is UpstreamRateLimitError
    assert error.retry_after == 2.5


def test_a_plain_429_without_a_known_wait_still_says_when_to_retry():
    error = error_from_result(failed(429), None, NOW)
    assert error.retry_after == DEFAULT_RETRY_AFTER_SECONDS


def test_a_usage_limit_waits_until_its_reset():
    limit = RateLimitInfo(status="rejected", resets_at=int(NOW) + 600)
    error = error_from_result(failed(429), limit, NOW)
    assert isinstance(error, UsageLimitError)
    assert error.retry_after == 600


@pytest.mark.parametrize(
    ("status", "reason", "text", "named"),
    [
        pytest.param(
            400,
            "prompt_too_long",
            "Prompt is too long · the request is ~250101 tokens (limit 200000) but this conversation is ...",
            "250101 tokens, the model takes 200000",
            id="refused upstream",
        ),
        pytest.param(None, "blocking_limit", "Prompt is too long", None, id="refused before sending"),
    ],
)
def test_a_prompt_past_the_context_window_is_context_length_exceeded(status, reason, text, named):
    error = error_from_result(failed(status, text, reason), None, NOW)
    assert isinstance(error, ContextLengthExceededError)
    assert error.status == 400
    assert error.code == "context_length_exceeded"
    assert "API Error" not in error.message
    if named:
        assert named in error.message


def test_the_cli_prose_never_reaches_the_message():
    error = error_from_result(failed(500, "API Error: 500 at http://127.0.0.1:9999/v1/messages"), None, NOW)
    assert "127.0.0.1" not in error.message
