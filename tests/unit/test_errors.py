"""Tests of errors.py: each error's HTTP status, OpenAI type and code, body and retry headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from claude_code_api.errors import (
    AuthenticationError,
    ClaudeUnavailableError,
    GatewayError,
    InvalidOAuthTokenError,
    InvalidRequestError,
    KeyExpiredError,
    LimitStoreUnavailableError,
    ModelNotFoundError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    TokenDecryptionError,
    UnsupportedParameterError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)

ERRORS = [
    # (error, status, type, code, parent class)
    (GatewayError("boom"), 500, "api_error", "internal_error", Exception),
    (InvalidRequestError("bad"), 400, "invalid_request_error", "invalid_request", GatewayError),
    (
        UnsupportedParameterError("n", "use n=1."),
        400,
        "invalid_request_error",
        "unsupported_parameter",
        InvalidRequestError,
    ),
    (InvalidOAuthTokenError(), 400, "invalid_request_error", "invalid_oauth_token", InvalidRequestError),
    (PayloadTooLargeError("big"), 413, "invalid_request_error", "request_too_large", InvalidRequestError),
    (AuthenticationError("who?"), 401, "invalid_request_error", "invalid_api_key", GatewayError),
    (PermissionDeniedError("no"), 403, "permission_error", "permission_denied", GatewayError),
    (NotFoundError("gone"), 404, "invalid_request_error", "not_found", GatewayError),
    (ModelNotFoundError("gpt-5"), 404, "invalid_request_error", "model_not_found", NotFoundError),
    (RateLimitError("slow"), 429, "rate_limit_error", "rate_limit_exceeded", GatewayError),
    (UpstreamRateLimitError("slow"), 429, "rate_limit_error", "upstream_rate_limited", RateLimitError),
    (QuotaExceededError("out"), 429, "insufficient_quota", "insufficient_quota", RateLimitError),
    (KeyExpiredError(NEW_YEAR), 429, "rate_limit_error", "api_key_expired", RateLimitError),
    (UpstreamError("502"), 502, "api_error", "upstream_error", GatewayError),
    (UpstreamAuthenticationError("401"), 502, "api_error", "upstream_authentication_failed", UpstreamError),
    (ClaudeUnavailableError("down"), 503, "api_error", "claude_unavailable", GatewayError),
    (LimitStoreUnavailableError("down"), 503, "api_error", "limit_store_unavailable", GatewayError),
    (UpstreamTimeoutError("slow"), 504, "api_error", "upstream_timeout", GatewayError),
    (TokenDecryptionError(), 500, "api_error", "token_decryption_failed", GatewayError),
]


@pytest.mark.parametrize(("error", "status", "error_type", "code", "parent"), ERRORS)
def test_each_error_has_its_status_type_and_code(error, status, error_type, code, parent):
    assert isinstance(error, parent)
    assert error.status == status
    assert error.to_body() == {
        "error": {"message": error.message, "type": error_type, "param": error.param, "code": code}
    }
    assert str(error) == error.message


@pytest.mark.parametrize(
    ("error", "param", "message"),
    [
        (InvalidRequestError("bad", param="messages"), "messages", "bad"),
        (
            UnsupportedParameterError("logit_bias", "Claude does not support logit bias."),
            "logit_bias",
            "Unsupported parameter 'logit_bias': Claude does not support logit bias.",
        ),
        (
            InvalidOAuthTokenError(),
            "oauth_token",
            "Invalid OAuth token: a Claude OAuth token starts with 'sk-ant-oat01-'.",
        ),
        (InvalidOAuthTokenError("it has expired."), "oauth_token", "Invalid OAuth token: it has expired."),
        (
            ModelNotFoundError("gpt-5"),
            "model",
            "The model 'gpt-5' does not exist or this key cannot reach it. GET /v1/models lists the models "
            "this key can use.",
        ),
    ],
)
def test_error_names_its_parameter(error, param, message):
    assert error.param == param
    assert error.message == message
    assert error.to_body()["error"]["param"] == param


@pytest.mark.parametrize(
    ("error", "headers"),
    [
        (GatewayError("boom"), {}),
        (InvalidRequestError("bad"), {}),
        (RateLimitError("slow"), {}),
        (UpstreamError("502"), {}),
        (ClaudeUnavailableError("down"), {}),
        (QuotaExceededError("out"), {"x-should-retry": "false"}),
        (KeyExpiredError(NEW_YEAR), {"x-should-retry": "false"}),
        (UpstreamAuthenticationError("401"), {"x-should-retry": "false"}),
        (TokenDecryptionError(), {"x-should-retry": "false"}),
    ],
)
def test_errors_that_retrying_cannot_fix_say_so(error, headers):
    assert error.headers() == headers


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (0, "1"),
        (0.2, "1"),
        (0.5, "1"),
        (1, "1"),
        (1.0, "1"),
        (1.4, "2"),
        (2.5, "3"),
        (5, "5"),
        (59.01, "60"),
        (3600, "3600"),
    ],
)
def test_retry_after_is_whole_seconds_never_earlier_than_asked_and_at_least_one(retry_after, header):
    # A client that waits Retry-After seconds must not come back before the limit has reset.
    assert RateLimitError("slow", retry_after=retry_after).headers() == {"Retry-After": header}


@pytest.mark.parametrize(
    ("error", "headers"),
    [
        (UpstreamRateLimitError("slow", retry_after=30), {"Retry-After": "30"}),
        (ClaudeUnavailableError("overloaded", retry_after=5), {"Retry-After": "5"}),
        (QuotaExceededError("out", retry_after=60), {"Retry-After": "60", "x-should-retry": "false"}),
    ],
)
def test_retry_after_and_should_retry_combine(error, headers):
    assert error.headers() == headers


def test_token_decryption_error_tells_the_administrator_what_to_do():
    error = TokenDecryptionError()
    assert "secret key" in error.message
    assert "re-create the key" in error.message


def test_an_expired_key_is_told_when_it_expired_in_utc():
    expired_at = datetime(2026, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    assert KeyExpiredError(expired_at).message.startswith("This API key expired on 2026-01-01 07:30 UTC.")
