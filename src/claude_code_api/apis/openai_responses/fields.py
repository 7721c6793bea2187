"""The Responses API parameters Claude Code cannot honour: this API's refusal table.

Nothing is stored: `store: true`, `previous_response_id`, `conversation` and item references are
refused with a 400 that says so, and a client sends the whole conversation as input items each time.
"""

from __future__ import annotations

from claude_code_api.answer.fields import FieldRefusal, refuse_fields
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest


def refuse_unsupported(request: ResponsesRequest) -> None:
    """Raises a 400 naming the first parameter Claude Code cannot honour."""
    refuse_fields(refusals(request))


def refusals(request: ResponsesRequest) -> list[FieldRefusal]:
    """This request's rows of the refusal table."""
    stored = "this gateway stores no responses; send the whole conversation as input items."
    reasoning = request.reasoning
    return [
        ("store", request.store is True, stored + " Leave 'store' unset or false."),
        ("previous_response_id", request.previous_response_id is not None, stored),
        ("conversation", request.conversation is not None, stored),
        ("background", request.background is True, "background responses need stored responses."),
        ("prompt", request.prompt is not None, "stored prompt templates are not available."),
        (
            "include",
            bool(request.include),
            "no extra output data (logprobs, encrypted reasoning) is offered.",
        ),
        ("top_logprobs", bool(request.top_logprobs), "Claude does not return log probabilities."),
        (
            "truncation",
            request.truncation == "auto",
            "Claude Code does not drop input items to fit the context; use 'disabled'.",
        ),
        (
            "reasoning.summary",
            reasoning is not None and (reasoning.summary or reasoning.generate_summary) not in (None, "auto"),
            "this gateway returns no reasoning summaries; leave 'summary' unset or 'auto'.",
        ),
        ("context_management", request.context_management is not None, "Claude Code manages its context."),
        ("moderation", request.moderation is not None, "moderation is not available."),
        ("image", request.image is not None, "image generation options are not available."),
        ("access_programs", request.access_programs is not None, "access programs are not available."),
        ("background_options", request.background_options is not None, "background responses need storage."),
        ("prompt_cache_options", request.prompt_cache_options is not None, "Claude Code manages caching."),
    ]
