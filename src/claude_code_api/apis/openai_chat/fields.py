"""The OpenAI chat parameters Claude Code cannot honour: this API's refusal table."""

from __future__ import annotations

from claude_code_api.answer.fields import FieldRefusal, refuse_fields
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest


def refuse_unsupported_parameters(request: ChatCompletionRequest) -> None:
    """Raises a 400 naming the first parameter Claude Code cannot honour."""
    refuse_fields(refusals(request))


def refusals(request: ChatCompletionRequest) -> list[FieldRefusal]:
    """This request's rows of the refusal table."""
    return [
        ("n", (request.n or 1) > 1, "Claude returns one choice per request; use n=1."),
        ("logprobs", bool(request.logprobs), "Claude does not return log probabilities."),
        (
            "top_logprobs",
            request.top_logprobs is not None,
            "Claude does not return log probabilities.",
        ),
        ("logit_bias", bool(request.logit_bias), "Claude does not support logit bias."),
        ("audio", request.audio is not None, "audio output is not supported."),
        (
            "modalities",
            any(m != "text" for m in request.modalities or ()),
            "only text output is supported.",
        ),
        ("prediction", request.prediction is not None, "predicted outputs are not supported."),
        (
            "web_search_options",
            request.web_search_options is not None,
            "web search is not available through this gateway.",
        ),
        (
            "presence_penalty",
            bool(request.presence_penalty),
            "Claude has no presence penalty; leave it at 0.",
        ),
        (
            "frequency_penalty",
            bool(request.frequency_penalty),
            "Claude has no frequency penalty; leave it at 0.",
        ),
        ("functions", request.functions is not None, "use 'tools' instead."),
        ("function_call", request.function_call is not None, "use 'tool_choice' instead."),
        (
            "store",
            bool(request.store),
            "this gateway does not store completions; leave 'store' unset or false.",
        ),
        (
            "stream_options",
            request.stream_options is not None and not request.stream,
            "'stream_options' is only allowed when 'stream' is true.",
        ),
    ]
