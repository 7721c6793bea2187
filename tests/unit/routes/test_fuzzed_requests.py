"""Hostile and malformed requests, generated: every API answers them with one of its own errors (a 4xx
naming what is wrong), never an unexpected exception (a 500). Parsing and translation are pure, so the
property is checked without a server, thousands of cases a run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_code_api import catalog
from claude_code_api.apis.anthropic_messages import fields as messages_fields
from claude_code_api.apis.anthropic_messages.schemas import MessagesRequest
from claude_code_api.apis.anthropic_messages.translate import translate_messages_request
from claude_code_api.apis.openai_chat import fields as chat_fields
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_chat.translate import translate_request
from claude_code_api.apis.openai_responses import fields as responses_fields
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest
from claude_code_api.apis.openai_responses.translate import translate_responses_request
from claude_code_api.errors import GatewayError
from claude_code_api.routes.deps import parse_policed_request

APIS: Any = {
    "chat": (
        ChatCompletionRequest,
        chat_fields.POLICY,
        translate_request,
        {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "messages": (
        MessagesRequest,
        messages_fields.POLICY,
        translate_messages_request,
        {"model": "sonnet", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "responses": (
        ResponsesRequest,
        responses_fields.POLICY,
        translate_responses_request,
        {"model": "sonnet", "input": "hi"},
    ),
}

# Values of every JSON type, with the edges that broke parsers before: huge integers, control characters,
# deep nesting, empty containers.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["user", "assistant", "system", "tool", "text", "image", "tool_use", "function", "\u0000\n"]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "model",
        "messages",
        "input",
        "max_tokens",
        "stream",
        "tools",
        "tool_choice",
        "system",
        "content",
        "role",
        "temperature",
        "response_format",
        "thinking",
        "stop",
        "n",
        "metadata",
        "instructions",
        "reasoning",
    ]
)


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid request with some fields replaced by anything, or new ones added."""
    return st.dictionaries(KEYS | st.text(max_size=8), json_values, max_size=4).map(
        lambda extra: {**base, **extra}
    )


def refusal(api: str, body: bytes) -> GatewayError | None:
    """The gateway's error for a body (None: it is answered); any other exception escapes."""
    shape, policy, translate, _ = APIS[api]
    try:
        wire = parse_policed_request(body, shape, policy).wire
        translate(wire, catalog.resolve_model(wire.model), False)
    except GatewayError as error:
        return error
    return None


def answer_or_error(api: str, body: bytes) -> None:
    error = refusal(api, body)
    assert error is None or 400 <= error.status < 500, error


@pytest.mark.parametrize("api", list(APIS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_request_gets_an_answer_or_a_client_error(api: str, data: st.DataObject) -> None:
    document = data.draw(mutated(APIS[api][3]))
    answer_or_error(api, json.dumps(document).encode())


@pytest.mark.parametrize("api", list(APIS))
@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=64) | json_values.map(lambda value: json.dumps(value).encode()))
def test_any_body_gets_an_answer_or_a_client_error(api: str, body: bytes) -> None:
    answer_or_error(api, body)
