"""Tests of each API's field table (apis/<dialect>/fields.py): the official SDKs' request fields are all
classified, the captured requests of real clients are accepted, and the table's rows do what they say."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import message_count_tokens_params, message_create_params
from anthropic.types.beta import BetaContentBlockParam, BetaToolUnionParam
from anthropic.types.beta import message_create_params as beta_message_create_params
from openai.types.chat import (
    ChatCompletionContentPartParam,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
    completion_create_params,
)
from openai.types.responses import ResponseInputItemParam, ToolParam, response_create_params
from pydantic import BaseModel

from claude_code_api.answer.fields import Policy, Variants
from claude_code_api.apis.anthropic_messages import fields as messages_fields
from claude_code_api.apis.anthropic_messages.schemas import MessagesRequest
from claude_code_api.apis.anthropic_messages.translate import translate_messages_request
from claude_code_api.apis.openai_chat import fields as chat_fields
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_chat.translate import translate_request
from claude_code_api.apis.openai_responses import fields as responses_fields
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest
from claude_code_api.apis.openai_responses.translate import translate_responses_request
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError
from claude_code_api.routes.deps import parse_policed_request

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "clients"
SONNET = ModelChoice(requested="sonnet", claude_model="sonnet")

APIS: dict[str, tuple[Policy, type[BaseModel], Any]] = {
    "/v1/messages": (messages_fields.POLICY, MessagesRequest, translate_messages_request),
    "/v1/chat/completions": (chat_fields.POLICY, ChatCompletionRequest, translate_request),
    "/v1/responses": (responses_fields.POLICY, ResponsesRequest, translate_responses_request),
}
BASE: dict[str, dict[str, Any]] = {
    "/v1/messages": {"model": "sonnet", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/chat/completions": {"model": "sonnet", "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/responses": {"model": "sonnet", "input": "Hi"},
}


def _typed_dict_fields(typed_dict: Any) -> set[str]:
    return {name for klass in typed_dict.__mro__ for name in getattr(klass, "__annotations__", {})}


@pytest.mark.parametrize(
    ("request_type", "policy"),
    [
        (completion_create_params.CompletionCreateParamsBase, chat_fields.POLICY),
        (response_create_params.ResponseCreateParamsBase, responses_fields.POLICY),
        (message_create_params.MessageCreateParamsBase, messages_fields.POLICY),
        (beta_message_create_params.MessageCreateParamsBase, messages_fields.POLICY),
        (message_count_tokens_params.MessageCountTokensParams, messages_fields.POLICY),
    ],
    ids=lambda value: getattr(value, "__module__", None),
)
def test_every_field_of_the_official_sdk_request_types_is_classified(request_type, policy):
    assert sorted(_typed_dict_fields(request_type) - set(policy.shape.fields)) == []


def _literals(annotation: Any) -> set[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return {value for value in typing.get_args(annotation) if isinstance(value, str)}
    return {value for arg in typing.get_args(annotation) for value in _literals(arg)}


def _kinds(union: Any, key: str = "type") -> set[str]:
    """The values of `key` that the members of an SDK TypedDict union declare."""
    kinds: set[str] = set()
    for member in typing.get_args(union):
        member = typing.get_args(member)[0] if typing.get_origin(member) is typing.Annotated else member
        for klass in getattr(member, "__mro__", ()):
            if key in getattr(klass, "__annotations__", {}):
                kinds |= _literals(typing.get_type_hints(klass, include_extras=True)[key])
                break
    return kinds


def _variants(policy: Policy, *path: str) -> set[str]:
    node: Any = policy.shape
    for name in path:
        node = node.variants[name] if isinstance(node, Variants) else node.fields[name].inner
    assert isinstance(node, Variants)
    return set(node.variants)


@pytest.mark.parametrize(
    ("union", "key", "policy", "path"),
    [
        (BetaContentBlockParam, "type", messages_fields.POLICY, ("messages", "user", "content")),
        (BetaToolUnionParam, "type", messages_fields.POLICY, ("tools",)),
        (ResponseInputItemParam, "type", responses_fields.POLICY, ("input",)),
        (ToolParam, "type", responses_fields.POLICY, ("tools",)),
        (ChatCompletionContentPartParam, "type", chat_fields.POLICY, ("messages", "user", "content")),
        (ChatCompletionMessageParam, "role", chat_fields.POLICY, ("messages",)),
        (ChatCompletionToolUnionParam, "type", chat_fields.POLICY, ("tools",)),
    ],
    ids=lambda value: "/".join(value) if isinstance(value, tuple) else None,
)
def test_every_block_item_and_tool_kind_of_the_official_sdks_is_classified(union, key, policy, path):
    assert _kinds(union, key), "the SDK union declares no kinds: the walk is broken"
    assert sorted(_kinds(union, key) - _variants(policy, *path)) == []


def _parse(path: str, body: dict[str, Any], strict: bool = False) -> tuple[Any, tuple[str, ...]]:
    policy, shape, _ = APIS[path]
    parsed = parse_policed_request(json.dumps(body).encode(), shape, policy, strict=strict)
    return parsed.wire, parsed.ignored


def _translate(path: str, body: dict[str, Any]) -> Any:
    wire, _ = _parse(path, body)
    return APIS[path][2](wire, SONNET)


# What each captured client request carries that the gateway does not act on.
CAPTURED_IGNORED = {
    "claude-code-json.json": {
        "messages[1].content[0].cache_control",
        "system[1].cache_control",
        "system[2].cache_control",
        "tools[10].defer_loading",
        "metadata",
        "thinking.display",
        "context_management",
    },
    "claude-code-tool-result.json": {
        "messages[3].content[0].cache_control",
        "system[1].cache_control",
        "system[2].cache_control",
        "tools[10].defer_loading",
        "metadata",
        "thinking.display",
        "context_management",
    },
    "ai-sdk-anthropic-stream-tools.json": {"tools[0].eager_input_streaming"},
    "ai-sdk-anthropic-thinking.json": {"tools[0].eager_input_streaming"},
    "ai-sdk-chat-stream-tools.json": set(),
    "ai-sdk-chat-settings.json": {"user", "temperature"},
    "ai-sdk-responses-stream-tools.json": set(),
    "ai-sdk-responses-settings.json": {"temperature", "store", "include[0]"},
}


@pytest.mark.parametrize("fixture", sorted(path.name for path in FIXTURES.glob("*.json")))
def test_captured_client_requests_are_accepted(fixture):
    captured = json.loads((FIXTURES / fixture).read_text())
    path, body = captured["path"], captured["body"]

    wire, ignored = _parse(path, body)
    APIS[path][2](wire, SONNET)

    if fixture in CAPTURED_IGNORED:
        assert set(ignored) == CAPTURED_IGNORED[fixture]
    if fixture.startswith("codex"):
        # Codex: its metadata, item ids, the encrypted-reasoning include and its web_search tool; its
        # namespace tool is flattened into functions
        assert {"client_metadata", "include[0]", "input[0].id"} <= set(ignored)
        kinds = {tool["type"]: f"tools[{n}]" for n, tool in enumerate(body["tools"])}
        assert kinds["web_search"] in ignored
        assert kinds["namespace"] not in ignored
        names = {tool.name for tool in APIS[path][2](wire, SONNET).client_tools}
        assert "multi_agent_v1__close_agent" in names


def test_claude_codes_thinking_and_effort_reach_the_claude_request():
    captured = json.loads((FIXTURES / "claude-code-stream-json.json").read_text())
    claude = _translate("/v1/messages", captured["body"])
    assert claude.thinking == {"type": "adaptive"}
    assert claude.effort == "medium"


def test_the_ai_sdks_thinking_budget_reaches_the_claude_request():
    captured = json.loads((FIXTURES / "ai-sdk-anthropic-thinking.json").read_text())
    claude = _translate("/v1/messages", captured["body"])
    assert claude.thinking == {
        "type": "enabled",
        "budget_tokens": captured["body"]["thinking"]["budget_tokens"],
    }


IGNORED_CASES = [
    # (api, extra fields, the names in the header)
    (
        "/v1/chat/completions",
        {"presence_penalty": 0.5, "frequency_penalty": -1},
        {"presence_penalty", "frequency_penalty"},
    ),
    ("/v1/chat/completions", {"seed": 7, "logit_bias": {"50256": -100}}, {"seed", "logit_bias"}),
    ("/v1/chat/completions", {"prediction": {"type": "content", "content": "x"}}, {"prediction"}),
    ("/v1/chat/completions", {"web_search_options": {}, "store": True}, {"web_search_options", "store"}),
    ("/v1/chat/completions", {"logprobs": False, "n": 1}, {"logprobs"}),
    ("/v1/chat/completions", {"modalities": ["text"], "verbosity": "low"}, {"modalities", "verbosity"}),
    (
        "/v1/chat/completions",
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi", "prompt_cache_breakpoint": {}}]}
            ]
        },
        {"messages[0].content[0].prompt_cache_breakpoint"},
    ),
    ("/v1/chat/completions", {"tools": [{"type": "custom", "custom": {"name": "x"}}]}, {"tools[0]"}),
    ("/v1/responses", {"store": True, "truncation": "auto"}, {"store", "truncation"}),
    ("/v1/responses", {"reasoning": {"effort": "max", "summary": "detailed"}}, {"reasoning.summary"}),
    (
        "/v1/responses",
        {"include": ["reasoning.encrypted_content", "file_search_call.results"]},
        {"include[0]", "include[1]"},
    ),
    ("/v1/responses", {"tools": [{"type": "web_search"}, {"type": "file_search"}]}, {"tools[0]", "tools[1]"}),
    (
        "/v1/responses",
        {"client_metadata": {"a": "b"}, "context_management": []},
        {"client_metadata", "context_management"},
    ),
    (
        "/v1/responses",
        {"input": [{"type": "reasoning", "summary": []}, {"role": "user", "content": "Hi"}]},
        {"input[0]"},
    ),
    ("/v1/responses", {"top_logprobs": 0, "background": False}, {"top_logprobs", "background"}),
    (
        "/v1/messages",
        {"temperature": 0.5, "top_k": 5, "speed": "fast", "inference_geo": "us"},
        {"temperature", "top_k", "speed", "inference_geo"},
    ),
    (
        "/v1/messages",
        {"context_management": {"edits": []}, "container": "c"},
        {"context_management", "container"},
    ),
    ("/v1/messages", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, {"tools[0]"}),
    ("/v1/messages", {"tools": [{"type": "bash_20250124", "name": "bash"}]}, {"tools[0]"}),
    (
        "/v1/messages",
        {
            "tools": [
                {
                    "name": "f",
                    "input_schema": {"type": "object"},
                    "defer_loading": True,
                    "eager_input_streaming": True,
                }
            ]
        },
        {"tools[0].defer_loading", "tools[0].eager_input_streaming"},
    ),
    ("/v1/messages", {"thinking": {"type": "adaptive", "display": "updates"}}, {"thinking.display"}),
    ("/v1/messages", {"thread": {"type": "create"}}, {"thread"}),
    (
        "/v1/messages",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "citations": []}]}]},
        {"messages[0].content[0].citations"},
    ),
]


@pytest.mark.parametrize(("path", "fields", "named"), IGNORED_CASES)
def test_ignored_fields_are_accepted_and_named(path, fields, named):
    wire, ignored = _parse(path, {**BASE[path], **fields})
    APIS[path][2](wire, SONNET)
    assert set(ignored) == named


REFUSED_CASES = [
    ("/v1/chat/completions", {"n": 2}, "n"),
    ("/v1/chat/completions", {"logprobs": True}, "logprobs"),
    ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"audio": {"voice": "alloy"}}, "audio"),
    ("/v1/chat/completions", {"modalities": ["text", "audio"]}, "modalities"),
    ("/v1/chat/completions", {"functions": []}, "functions"),
    ("/v1/chat/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        "messages[0].content[0]",
    ),
    ("/v1/responses", {"previous_response_id": "resp_1"}, "previous_response_id"),
    ("/v1/responses", {"background": True}, "background"),
    ("/v1/responses", {"top_logprobs": 2}, "top_logprobs"),
    ("/v1/responses", {"include": ["message.output_text.logprobs"]}, "include[0]"),
    ("/v1/responses", {"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ("/v1/responses", {"tool_choice": {"type": "web_search"}}, "tool_choice"),
    ("/v1/messages", {"thread": {"type": "continue", "previous_message_id": "m"}}, "thread"),
    (
        "/v1/messages",
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
        "messages[0].content[0]",
    ),
]


@pytest.mark.parametrize(("path", "fields", "param"), REFUSED_CASES)
def test_refused_fields_are_a_400_naming_them(path, fields, param):
    with pytest.raises(UnsupportedParameterError) as raised:
        _parse(path, {**BASE[path], **fields})
    assert raised.value.param == param


@pytest.mark.parametrize("path", sorted(APIS))
def test_unknown_fields_are_ignored_or_in_strict_mode_refused(path):
    body = {**BASE[path], "frobnicate": 1}
    assert _parse(path, body)[1] == ("frobnicate",)
    with pytest.raises(UnsupportedParameterError) as raised:
        _parse(path, body, strict=True)
    assert raised.value.param == "frobnicate"


HUGE = 2**64


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        ("/v1/messages", {"max_tokens": HUGE}, "max_tokens"),
        ("/v1/messages", {"thinking": {"type": "enabled", "budget_tokens": HUGE}}, "thinking.budget_tokens"),
        ("/v1/messages", {"max_tokens": 10**7}, "max_tokens"),
        ("/v1/chat/completions", {"max_tokens": HUGE}, "max_tokens"),
        ("/v1/chat/completions", {"max_completion_tokens": 10**7}, "max_completion_tokens"),
        ("/v1/responses", {"max_output_tokens": HUGE}, "max_output_tokens"),
        ("/v1/responses", {"max_tool_calls": HUGE}, "max_tool_calls"),
    ],
)
def test_huge_integers_are_a_400_naming_the_field(path, fields, param):
    with pytest.raises(InvalidRequestError) as raised:
        _parse(path, {**BASE[path], **fields})
    assert raised.value.param == param
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/v1/chat/completions", {"reasoning_effort": "max"}),
        ("/v1/responses", {"reasoning": {"effort": "max"}}),
        ("/v1/messages", {"output_config": {"effort": "max"}}),
    ],
)
def test_effort_max_is_mapped(path, fields):
    assert _translate(path, {**BASE[path], **fields}).effort == "max"


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": ""}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
        ("/v1/messages", {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
        ("/v1/messages", {"messages": [{"role": "user", "content": ""}]}),
        ("/v1/responses", {"input": ""}),
        ("/v1/responses", {"input": [{"role": "user", "content": [{"type": "input_text", "text": ""}]}]}),
    ],
)
def test_empty_text_is_accepted_on_every_api(path, fields):
    claude = _translate(path, {**BASE[path], **fields})
    assert all(block["type"] != "text" or block["text"].strip() for block in claude.prompt)
