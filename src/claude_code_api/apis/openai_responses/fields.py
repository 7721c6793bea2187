"""The Responses API's field table: each field of a request mapped, ignored or refused
(answer/fields.py applies it; docs/field-policy.md lists it).

Nothing is stored: `previous_response_id`, `conversation`, `background` and item references are
refused, and a client sends the whole conversation as input items each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from claude_code_api.answer.fields import (
    MAPPED,
    Policy,
    Variants,
    ignored,
    mapped,
    refused,
    refused_when,
    shape,
)

STORED = "this gateway stores no responses; send the whole conversation as input items."
SAMPLING = ignored("a sampling parameter; Claude Code sets its own (restated in the response).", keep=True)
NOT_USED = ignored("not used by this gateway; the answer is the same.")
ECHOED = ignored("not used by this gateway (restated in the response).", keep=True)
CACHE = ignored("Claude Code manages its prompt cache.")
HOSTED = ignored("a hosted tool the gateway cannot offer; dropped, Claude answers without it.")
HOSTED_HISTORY = ignored("history of a hosted tool the gateway does not run; dropped.")
FORCED_HOSTED = "forcing a tool the gateway cannot offer: the forced call would never come."


def _true(value: Any, _parent: Mapping[str, Any]) -> bool:
    return value is True


def _positive(value: Any, _parent: Mapping[str, Any]) -> bool:
    return value is not None and bool(value > 0)


_ITEM_META = {"id": ignored("item ids are not used."), "status": ignored("item status is not used.")}
_INPUT_TEXT = shape(text=MAPPED, prompt_cache_breakpoint=CACHE)
_PART = Variants(
    "type",
    {
        "input_text": _INPUT_TEXT,
        "input_image": shape(
            image_url=MAPPED,
            file_id=MAPPED,
            detail=ignored("Claude sees the image as sent."),
            prompt_cache_breakpoint=CACHE,
        ),
        "output_text": shape(
            text=MAPPED,
            annotations=ignored("annotations of an earlier answer."),
            logprobs=ignored("log probabilities of an earlier answer."),
        ),
        "refusal": shape(refusal=MAPPED),
        "input_file": refused("files are not passed to Claude Code; the answer would miss them."),
    },
    unknown_validated=True,
)
_HOSTED_ITEMS = (
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "tool_search_call",
    "tool_search_output",
    "program",
    "program_output",
    "additional_tools",
    "configuration_update",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
)
_ITEM = Variants(
    "type",
    {
        "message": shape(role=MAPPED, content=mapped(_PART), phase=ignored("a display hint."), **_ITEM_META),
        "function_call": shape(
            call_id=MAPPED,
            name=MAPPED,
            arguments=MAPPED,
            namespace=mapped(reason="the namespace of a namespace tool's function."),
            caller=ignored("who called a tool; the call itself is kept."),
            **{"async": ignored("asynchronous calls are answered in turn.")},
            **_ITEM_META,
        ),
        "function_call_output": shape(
            call_id=MAPPED,
            output=mapped(_PART),
            name=ignored("the call is found by call_id."),
            namespace=ignored("the call is found by call_id."),
            caller=ignored("the call is found by call_id."),
            **_ITEM_META,
        ),
        "reasoning": ignored("earlier reasoning: this gateway never returns any to replay."),
        "compaction": ignored("an encrypted summary from OpenAI's servers; Claude cannot read it."),
        "compaction_trigger": ignored("compaction is Claude Code's own."),
        "item_reference": refused("item references need stored responses; send the item itself."),
        **{kind: HOSTED_HISTORY for kind in _HOSTED_ITEMS},
    },
    default="message",
)
_FUNCTION = shape(
    name=MAPPED,
    description=MAPPED,
    parameters=MAPPED,
    strict=ignored("Claude Code validates tool input against the schema itself."),
    defer_loading=ignored("tools are offered at once."),
    output_schema=ignored("tool output is passed on as the client sends it."),
    allowed_callers=ignored("Claude calls tools directly."),
    **{"async": ignored("asynchronous calls are answered in turn.")},
)
_HOSTED_TOOLS = (
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "mcp",
    "computer",
    "computer_use_preview",
    "tool_search",
    "programmatic_tool_calling",
    "local_shell",
    "shell",
    "apply_patch",
)
_TOOL = Variants(
    "type",
    {
        "function": _FUNCTION,
        "namespace": shape(
            name=MAPPED,
            description=mapped(reason="goes into each function's description."),
            tools=mapped(
                Variants(
                    "type",
                    {
                        "function": _FUNCTION,
                        "custom": ignored("custom (free-form input) tools are not offered; dropped."),
                    },
                )
            ),
        ),
        "custom": ignored("custom (free-form input) tools are not offered; dropped."),
        **{kind: HOSTED for kind in _HOSTED_TOOLS},
    },
)
_TOOL_CHOICE = Variants(
    "type",
    {
        "function": shape(name=MAPPED),
        "allowed_tools": refused("restricting the offered tools per request is not supported."),
        "custom": refused(FORCED_HOSTED),
        **{
            kind: refused(FORCED_HOSTED)
            for kind in (
                "mcp",
                "web_search",
                "web_search_preview",
                "web_search_preview_2025_03_11",
                "file_search",
                "image_generation",
                "code_interpreter",
                "computer",
                "computer_use_preview",
                "computer_use",
                "shell",
                "apply_patch",
                "programmatic_tool_calling",
            )
        },
    },
    unknown_validated=True,
)
_NO_RESULTS = ignored("refers to output items this gateway never produces.")

REQUEST = shape(
    model=MAPPED,
    input=mapped(_ITEM),
    instructions=MAPPED,
    tools=mapped(_TOOL),
    tool_choice=mapped(_TOOL_CHOICE),
    parallel_tool_calls=mapped(reason="false: at most one call per answer, through the system prompt."),
    max_output_tokens=MAPPED,
    max_tool_calls=ECHOED,
    stream=MAPPED,
    stream_options=mapped(shape(include_obfuscation=NOT_USED)),
    text=mapped(
        shape(
            format=mapped(
                Variants(
                    "type",
                    {
                        "text": shape(),
                        "json_object": shape(),
                        "json_schema": shape(name=MAPPED, schema=MAPPED, description=MAPPED, strict=MAPPED),
                    },
                    unknown_validated=True,
                )
            ),
            verbosity=ignored(
                "a length hint; Claude Code answers as it does (restated in the response).", keep=True
            ),
        )
    ),
    reasoning=mapped(
        shape(
            effort=mapped(reason="Claude Code's --effort (none and minimal become low)."),
            summary=ignored("no reasoning summaries are returned; the answer is the same kind."),
            generate_summary=ignored("no reasoning summaries are returned; the answer is the same kind."),
            context=ignored("Claude Code keeps its own reasoning context."),
            mode=ignored("Claude Code has one reasoning mode."),
        )
    ),
    temperature=SAMPLING,
    top_p=SAMPLING,
    top_logprobs=refused_when(
        _positive, "> 0", "Claude does not return log probabilities.", otherwise="ignored"
    ),
    truncation=ignored("Claude Code manages its own context."),
    metadata=ECHOED,
    user=ECHOED,
    safety_identifier=NOT_USED,
    prompt_cache_key=CACHE,
    prompt_cache_retention=CACHE,
    prompt_cache_options=CACHE,
    service_tier=ignored("Claude Code's requests take its own service tier."),
    store=ignored("nothing is stored; the answer is the same (a later previous_response_id is refused)."),
    previous_response_id=refused(STORED),
    conversation=refused(STORED),
    background=refused_when(
        _true, "true", "background responses need stored responses.", otherwise="ignored"
    ),
    background_options=ignored("meaningless without background responses."),
    include=mapped(
        values={
            "reasoning.encrypted_content": ignored("no reasoning items are returned; nothing to add."),
            "message.output_text.logprobs": refused("Claude does not return log probabilities."),
            "file_search_call.results": _NO_RESULTS,
            "web_search_call.results": _NO_RESULTS,
            "web_search_call.action.sources": _NO_RESULTS,
            "message.input_image.image_url": _NO_RESULTS,
            "computer_call_output.output.image_url": _NO_RESULTS,
            "code_interpreter_call.outputs": _NO_RESULTS,
        }
    ),
    prompt=refused("stored prompt templates are not available."),
    context_management=ignored("Claude Code manages its context."),
    moderation=ignored("moderation is not offered; the answer is the same."),
    image=ignored("image generation options; no image is generated."),
    access_programs=ignored("an OpenAI account setting."),
    client_metadata=ignored("the client's own identifiers (Codex CLI)."),
)

POLICY = Policy("/v1/responses", REQUEST)
