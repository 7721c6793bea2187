"""Claude Code's failures as the gateway's errors: a failed run's result, or an SDK exception.

The CLI's own error prose names the upstream URL, so it goes to the log only; the client gets an error
from the tree in errors.py, mapped here and nowhere else.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from claude_agent_sdk import ClaudeSDKError, CLINotFoundError, RateLimitInfo, ResultMessage

from claude_code_api.answer.request import NO_STRUCTURED_ANSWER
from claude_code_api.errors import (
    ClaudeUnavailableError,
    ContextLengthExceededError,
    GatewayError,
    InvalidRequestError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamRateLimitError,
    UsageLimitError,
)

logger = logging.getLogger(__name__)

TOKEN_ADVICE = (
    "Tokens copied from ~/.claude/.credentials.json expire within hours; "
    "`claude setup-token` issues a long-lived one. An administrator must give this key a new token."
)


# How Claude Code ends a turn whose conversation does not fit the context window: refused upstream, or
# refused before sending (its own estimate is past the window, so nothing is sent).
_TOO_LONG_REASONS = frozenset({"prompt_too_long", "blocking_limit"})
# Its words for the sizes, e.g. "the request is ~250101 tokens (limit 200000)": only the numbers go on.
_SIZES = re.compile(r"~?(\d+) tokens \(limit (\d+)\)|(\d+) tokens > (\d+) maximum")
# Retry-After when the upstream's own wait is unknown (Claude Code was told not to retry).
DEFAULT_RETRY_AFTER_SECONDS = 5.0


def error_from_result(
    result: ResultMessage,
    rate_limit: RateLimitInfo | None,
    now: float,
    retry_after: float | None = None,
) -> GatewayError:
    """Maps a failed run's result to the error the client gets; the CLI's prose is logged only.

    `retry_after` is the wait Claude Code last took before retrying a refusal (the upstream's
    Retry-After, where it sent one)."""
    status = result.api_error_status
    logger.warning(
        "Claude run failed: subtype=%s status=%s reason=%s",
        result.subtype,
        status,
        result.terminal_reason,
    )
    if status in (401, 403) or (status is None and "not logged in" in (result.result or "").lower()):
        return UpstreamAuthenticationError(
            f"Claude rejected the OAuth token of this API key (upstream HTTP {status or 401}): "
            f"it is invalid, revoked or expired. {TOKEN_ADVICE}"
        )
    if status == 429:
        if rate_limit is not None and rate_limit.status == "rejected" and rate_limit.resets_at:
            reset = datetime.fromtimestamp(rate_limit.resets_at, UTC).isoformat(timespec="seconds")
            return UsageLimitError(
                f"The Claude subscription behind this key has reached its usage limit; it resets at {reset}.",
                retry_after=max(1.0, rate_limit.resets_at - now),
            )
        return UpstreamRateLimitError(
            "Claude is rate limiting this key's requests; retry later.",
            retry_after=retry_after or DEFAULT_RETRY_AFTER_SECONDS,
        )
    if status in (529, 503):
        return ClaudeUnavailableError(
            f"Claude is overloaded (upstream HTTP {status}); retry shortly.", retry_after=5
        )
    if result.terminal_reason in _TOO_LONG_REASONS:
        sizes = _SIZES.search(result.result or "")
        limit = ""
        if sizes is not None:
            tokens, window = (sizes[1], sizes[2]) if sizes[1] else (sizes[3], sizes[4])
            limit = f" ({tokens} tokens, the model takes {window})"
        return ContextLengthExceededError(
            f"The conversation is too long for the model's context window{limit}; shorten it.",
            param="messages",
        )
    if status in (400, 413, 422):
        return InvalidRequestError(
            f"Claude refused the request (upstream HTTP {status}); it may be too long or malformed."
        )
    if status is not None:
        return UpstreamError(f"Claude's API failed (upstream HTTP {status}).")
    if "structured_output" in result.subtype:
        return UpstreamError(NO_STRUCTURED_ANSWER)
    if result.terminal_reason == "api_error":
        return UpstreamError("Claude's API could not be reached; see the server log.")
    return UpstreamError(f"Claude Code ended with an error ({result.subtype}).")


def error_from_exception(exc: ClaudeSDKError) -> GatewayError:
    """Maps an SDK exception (the CLI could not start, crashed or spoke nonsense) to a 502/503."""
    logger.warning("Claude Code failed: %s", type(exc).__name__, exc_info=logger.isEnabledFor(10))
    if isinstance(exc, CLINotFoundError):
        return ClaudeUnavailableError("Claude Code could not be started on the server.")
    return UpstreamError("Claude Code failed while answering; see the server log.")
