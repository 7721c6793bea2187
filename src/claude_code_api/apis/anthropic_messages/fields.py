"""The Messages API's field table: each field of a request mapped, ignored or refused
(answer/fields.py applies it; docs/field-policy.md lists it)."""

from __future__ import annotations

from typing import Any

from claude_code_api.answer.fields import (
    MAPPED,
    Field,
    Policy,
    Variants,
    ignored,
    mapped,
    refused,
    shape,
)

CACHE = ignored("Claude Code places its own cache breakpoints.")
SAMPLING = ignored("a sampling parameter; Claude Code sets its own.")
HOSTED = ignored("a server tool the gateway cannot offer; dropped, Claude answers without it.")
CLIENT_BUILTIN = ignored(
    "an Anthropic-defined client tool (bash, text editor, computer, memory); not offered, dropped."
)
HOSTED_HISTORY = ignored("history of a server tool the gateway does not run; dropped.")
BETA_HINT = ignored("a beta hint about how Anthropic's servers run the request; Claude Code decides.")
NO_FILES = "file sources need the Files API, which is not offered."
DOCUMENTS = "document and search-result blocks are not passed to Claude Code; the answer would miss them."


def _stored_thread(value: Any, _parent: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "continue"


_TEXT = shape(
    text=MAPPED,
    cache_control=CACHE,
    citations=ignored("citations of an earlier answer; the text itself is kept."),
)
_IMAGE_SOURCE = Variants(
    "type",
    {
        "base64": shape(media_type=MAPPED, data=MAPPED),
        "url": shape(url=MAPPED),
        "file": refused(NO_FILES),
    },
)
_IMAGE = shape(
    source=mapped(_IMAGE_SOURCE),
    cache_control=CACHE,
    transformations=ignored("image transformations (beta) are not applied."),
)
_TOOL_RESULT_PART = Variants(
    "type",
    {
        "text": _TEXT,
        "image": _IMAGE,
        "document": refused(DOCUMENTS),
        "search_result": refused(DOCUMENTS),
        "tool_reference": refused("tool references need Anthropic's tool search, which is not offered."),
    },
)
_HOSTED_BLOCKS = (
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
    "mcp_tool_use",
    "mcp_tool_result",
    "advisor_tool_result",
    "compaction",
    "fallback",
    "mcp_tool_listing",
)
_BLOCK = Variants(
    "type",
    {
        "text": _TEXT,
        "image": _IMAGE,
        "tool_use": shape(
            id=MAPPED,
            name=MAPPED,
            input=MAPPED,
            cache_control=CACHE,
            caller=ignored("who called a tool (beta); the call itself is kept."),
            toolset_name=ignored("a toolset name (beta); the call itself is kept."),
        ),
        "tool_result": shape(
            tool_use_id=MAPPED,
            content=mapped(_TOOL_RESULT_PART),
            is_error=MAPPED,
            cache_control=CACHE,
            toolset_name=ignored("a toolset name (beta); the result itself is kept."),
        ),
        "thinking": ignored("earlier thinking: Anthropic drops it from earlier turns too."),
        "redacted_thinking": ignored("earlier thinking: Anthropic drops it from earlier turns too."),
        "document": refused(DOCUMENTS),
        "search_result": refused(DOCUMENTS),
        "tool_addition": ignored("a mid-conversation tool change (beta); the request's tools apply."),
        "tool_removal": ignored("a mid-conversation tool change (beta); the request's tools apply."),
        **{kind: HOSTED_HISTORY for kind in _HOSTED_BLOCKS},
    },
)
_MESSAGE = Variants(
    "role",
    {
        "user": shape(content=mapped(_BLOCK)),
        "assistant": shape(content=mapped(_BLOCK)),
        "system": shape(
            content=mapped(_BLOCK),
            output_config=mapped(
                shape(effort=mapped(reason="the effort of this turn, as the top-level effort."))
            ),
            clear_at=ignored("when a system message expires (beta); it applies to the whole request."),
        ),
    },
    unknown_validated=True,
)
_CUSTOM_TOOL = shape(
    name=MAPPED,
    description=MAPPED,
    input_schema=MAPPED,
    cache_control=CACHE,
    strict=ignored("Claude Code validates tool input against the schema itself."),
    defer_loading=ignored("tools are offered at once; Claude Code has no deferred loading for them."),
    eager_input_streaming=ignored("tool input streams as Claude Code produces it."),
    input_examples=ignored("examples are not passed to Claude Code."),
    allowed_callers=ignored("who may call a tool (beta); Claude calls it directly."),
)
_CLIENT_BUILTINS = (
    "bash_20241022",
    "bash_20250124",
    "text_editor_20241022",
    "text_editor_20250124",
    "text_editor_20250429",
    "text_editor_20250728",
    "memory_20250818",
    "computer_20241022",
    "computer_20250124",
    "computer_20251124",
)
_HOSTED_TOOLS = (
    "web_search_20250305",
    "web_search_20260209",
    "web_search_20260318",
    "web_fetch_20250910",
    "web_fetch_20260209",
    "web_fetch_20260309",
    "web_fetch_20260318",
    "code_execution_20250522",
    "code_execution_20250825",
    "code_execution_20260120",
    "code_execution_20260521",
    "tool_search_tool_bm25",
    "tool_search_tool_bm25_20251119",
    "tool_search_tool_regex",
    "tool_search_tool_regex_20251119",
    "mcp_toolset",
    "advisor_20260301",
    "browser_toolset_20260801",
    "computer_toolset_20260801",
)
_TOOL = Variants(
    "type",
    {
        "custom": _CUSTOM_TOOL,
        **{kind: CLIENT_BUILTIN for kind in _CLIENT_BUILTINS},
        **{kind: HOSTED for kind in _HOSTED_TOOLS},
    },
    default="custom",
)
_PARALLEL = mapped(reason="at most one call per answer, through the system prompt.")
_TOOL_CHOICE = Variants(
    "type",
    {
        "auto": shape(disable_parallel_tool_use=_PARALLEL),
        "any": shape(disable_parallel_tool_use=_PARALLEL),
        "tool": shape(name=MAPPED, disable_parallel_tool_use=_PARALLEL),
        "none": shape(),
    },
    unknown_validated=True,
)
_DISPLAY = ignored("this gateway returns no thinking blocks; the text answer is the same.")
_THINKING = Variants(
    "type",
    {
        "adaptive": shape(display=_DISPLAY),
        "enabled": shape(budget_tokens=MAPPED, display=_DISPLAY),
        "disabled": shape(),
        "between_tools": shape(display=_DISPLAY),
    },
    unknown_validated=True,
)

REQUEST = shape(
    model=MAPPED,
    max_tokens=MAPPED,
    messages=mapped(_MESSAGE),
    system=mapped(Variants("type", {"text": _TEXT}, unknown_validated=True)),
    stop_sequences=MAPPED,
    stream=MAPPED,
    tools=mapped(_TOOL),
    tool_choice=mapped(_TOOL_CHOICE),
    thinking=mapped(_THINKING, reason="Claude Code's thinking option: adaptive, a token budget or off."),
    output_config=mapped(
        shape(
            effort=mapped(reason="Claude Code's --effort."),
            format=mapped(shape(type=MAPPED, schema=MAPPED), reason="structured output."),
            task_budget=ignored("a token budget hint (beta); Claude Code keeps its own."),
        )
    ),
    metadata=ignored("request metadata (user_id) is not used."),
    temperature=SAMPLING,
    top_p=SAMPLING,
    top_k=SAMPLING,
    service_tier=ignored("Claude Code's requests take its own service tier."),
    speed=ignored("Claude Code picks its own speed."),
    inference_geo=ignored("Claude Code's requests go where its upstream sends them."),
    cache_control=CACHE,
    container=ignored("a code-execution container; no server tools run here."),
    diagnostics=ignored("diagnostics for Anthropic's servers."),
    user_profile_id=ignored("an Anthropic account setting."),
    workspace_id=ignored("an Anthropic account setting."),
    context_management=BETA_HINT,
    compaction=BETA_HINT,
    mcp_servers=ignored("remote MCP servers are a server tool the gateway cannot offer."),
    fallbacks=ignored("the gateway picks the model."),
    fallback_credit_token=ignored("the gateway picks the model."),
    billing_policy=ignored("billing is the gateway's."),
    betas=ignored("the SDK sends betas as the anthropic-beta header; in a body they are not used."),
    thread=Field(
        "refused",
        "a thread stored on Anthropic's servers: the answer would lack the earlier turns; "
        "send the whole conversation.",
        when=_stored_thread,
        otherwise="ignored",
        condition="type continue",
    ),
)

POLICY = Policy("/v1/messages", REQUEST)
