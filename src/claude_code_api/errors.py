"""The gateway's error tree; each class knows its HTTP status and its OpenAI error type and code.

    GatewayError                          500 api_error
    ├── InvalidRequestError               400 invalid_request_error
    │   ├── UnsupportedParameterError     400 unsupported_parameter (names the parameter)
    │   ├── InvalidOAuthTokenError        400 invalid_oauth_token ("Invalid OAuth token")
    │   └── PayloadTooLargeError          413 request_too_large
    ├── AuthenticationError               401 invalid_api_key
    ├── PermissionDeniedError             403 permission_denied
    ├── NotFoundError                     404 not_found
    │   └── ModelNotFoundError            404 model_not_found
    ├── RateLimitError                    429 rate_limit_exceeded (Retry-After when known)
    │   ├── UpstreamRateLimitError        429 upstream_rate_limited
    │   ├── QuotaExceededError            429 insufficient_quota (x-should-retry: false)
    │   └── KeyExpiredError               429 api_key_expired (x-should-retry: false)
    ├── UpstreamError                     502 upstream_error
    │   └── UpstreamAuthenticationError   502 upstream_authentication_failed (x-should-retry: false)
    ├── ClaudeUnavailableError            503 claude_unavailable
    ├── LimitStoreUnavailableError        503 limit_store_unavailable (Redis down)
    ├── UpstreamTimeoutError              504 upstream_timeout
    ├── TokenDecryptionError              500 token_decryption_failed (x-should-retry: false)
    ├── SecretKeyError                    500 secret_key_unusable (damaged secret file, wrong secret)
    └── ModelTableError                   500 model_table_invalid (MODEL_TABLE unreadable or malformed)

Lower layers raise these; only the routes turn them into HTTP responses.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    code: ClassVar[str | None] = "internal_error"
    should_retry: ClassVar[bool | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        """Returns the error in OpenAI's wire shape."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        """Returns the HTTP headers that tell a client whether and when to retry."""
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            # Rounded up: a client that waits exactly this long must not come back early.
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


class InvalidRequestError(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class UnsupportedParameterError(InvalidRequestError):
    code = "unsupported_parameter"

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"Unsupported parameter '{param}': {reason}", param=param)


class InvalidOAuthTokenError(InvalidRequestError):
    code = "invalid_oauth_token"

    def __init__(self, detail: str = "a Claude OAuth token starts with 'sk-ant-oat01-'.") -> None:
        super().__init__(f"Invalid OAuth token: {detail}", param="oauth_token")


class ContextLengthExceededError(InvalidRequestError):
    """The conversation does not fit the model's context window (OpenAI's code for it)."""

    code = "context_length_exceeded"


class PayloadTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"


class AuthenticationError(GatewayError):
    status = 401
    # OpenAI reports a bad key as an invalid request with code invalid_api_key.
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class NotFoundError(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist or this key cannot reach it. GET /v1/models lists the "
            "models this key can use.",
            param="model",
        )


class RateLimitError(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamRateLimitError(RateLimitError):
    code = "upstream_rate_limited"


class UsageLimitError(UpstreamRateLimitError):
    """The subscription (or credential) behind the key is at its usage limit until a known reset."""


class QuotaExceededError(RateLimitError):
    error_type = "insufficient_quota"
    code = "insufficient_quota"
    should_retry = False


class KeyExpiredError(RateLimitError):
    code = "api_key_expired"
    # Retrying cannot help until an administrator extends the key or makes a new one.
    should_retry = False

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(
            f"This API key expired on {expired_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. "
            "Ask an administrator to extend it, or for a new key."
        )


class UpstreamError(GatewayError):
    status = 502
    error_type = "api_error"
    code = "upstream_error"


class UpstreamAuthenticationError(UpstreamError):
    code = "upstream_authentication_failed"
    # Retrying cannot help until an administrator replaces the OAuth token.
    should_retry = False


class ClaudeUnavailableError(GatewayError):
    status = 503
    error_type = "api_error"
    code = "claude_unavailable"


class LimitStoreUnavailableError(GatewayError):
    status = 503
    error_type = "api_error"
    code = "limit_store_unavailable"


class UpstreamTimeoutError(GatewayError):
    status = 504
    error_type = "api_error"
    code = "upstream_timeout"


class TokenDecryptionError(GatewayError):
    code = "token_decryption_failed"
    # Retrying cannot help until an administrator restores the secret the token was encrypted with.
    should_retry = False

    def __init__(self) -> None:
        super().__init__(
            "The OAuth token stored for this API key cannot be decrypted: the gateway's secret key "
            "differs from the one it was stored with. An administrator must restore that secret or "
            "re-create the key."
        )


class SecretKeyError(GatewayError):
    """The gateway's secret cannot be used: its file is damaged, or it is not the secret the key store's
    tokens were encrypted with. Raised at start (one line, no traceback) and reported by doctor."""

    code = "secret_key_unusable"
    should_retry = False


class ModelTableError(GatewayError):
    """The operator's model table (MODEL_TABLE) cannot be read or says something the gateway cannot use.
    Raised at start (one line, no traceback) and reported by doctor."""

    code = "model_table_invalid"
    should_retry = False
