"""The Messages API parameters Claude Code cannot honour: this API's refusal table."""

from __future__ import annotations

from claude_code_api.answer.fields import FieldRefusal, refuse_fields
from claude_code_api.apis.anthropic_messages.schemas import MessagesRequest


def refuse_unsupported(request: MessagesRequest) -> None:
    """Raises a 400 naming the first parameter Claude Code cannot honour."""
    refuse_fields(refusals(request))


def refusals(request: MessagesRequest) -> list[FieldRefusal]:
    """This request's rows of the refusal table; parameters that only tune sampling are accepted."""
    thinking = request.thinking
    kind = thinking.type if thinking is not None else "adaptive"
    return [
        (
            "thinking",
            kind != "adaptive",
            f"'{kind}' cannot be set through this gateway: Claude Code decides on thinking "
            'itself (adaptively). Leave \'thinking\' out, or send {"type": "adaptive"}.',
        ),
        (
            "thinking.display",
            thinking is not None and thinking.display == "summarized",
            "this gateway does not return thinking blocks; leave 'display' out.",
        ),
    ]
