"""The chat completions field table: each field of a request mapped, ignored or refused
(answer/fields.py applies it; docs/field-policy.md lists it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from claude_code_api.answer.fields import (
    MAPPED,
    Field,
    Policy,
    Variants,
    ignored,
    mapped,
    refused,
    refused_when,
    shape,
)

SAMPLING = ignored("a sampling parameter; Claude Code sets its own.")
NOT_USED = ignored("not used by this gateway; the answer is the same.")
LEGACY = "the legacy function-calling shape is not offered; use 'tools' and 'tool_choice'."


def _more_than_one(value: Any, _parent: Mapping[str, Any]) -> bool:
    return value is not None and bool(value > 1)


def _true(value: Any, _parent: Mapping[str, Any]) -> bool:
    return value is True


def _set(value: Any, _parent: Mapping[str, Any]) -> bool:
    return value is not None


def _audio(value: Any, _parent: Mapping[str, Any]) -> bool:
    return isinstance(value, list) and any(item != "text" for item in value)


def _without_stream(value: Any, parent: Mapping[str, Any]) -> bool:
    return value is not None and parent.get("stream") is not True


def _original_detail(value: Any, _parent: Mapping[str, Any]) -> bool:
    return bool(value == "original")


_CACHE = ignored("Claude Code places its own cache breakpoints.")
_TEXT = shape(text=MAPPED, prompt_cache_breakpoint=_CACHE)
_IMAGE_URL = shape(
    url=MAPPED,
    detail=Field(
        "ignored",
        "Claude sees the image as sent.",
        when=_original_detail,
        otherwise="mapped",
        condition="'original'",
    ),
)
_USER_PART = Variants(
    "type",
    {
        "text": _TEXT,
        "image_url": shape(image_url=mapped(_IMAGE_URL), prompt_cache_breakpoint=_CACHE),
        "input_audio": refused("Claude cannot hear audio input."),
        "file": refused("files are not passed to Claude Code; the answer would miss them."),
    },
)
_ASSISTANT_PART = Variants("type", {"text": _TEXT, "refusal": shape(refusal=MAPPED)})
_NAME = ignored("participant names are not passed to Claude.")
_TOOL_CALL = Variants(
    "type",
    {"function": shape(id=MAPPED, function=mapped(shape(name=MAPPED, arguments=MAPPED)))},
    default="function",
    unknown_validated=True,
)
_MESSAGE = Variants(
    "role",
    {
        "system": shape(content=mapped(_ASSISTANT_PART), name=_NAME),
        "developer": shape(content=mapped(_ASSISTANT_PART), name=_NAME),
        "user": shape(content=mapped(_USER_PART), name=_NAME),
        "assistant": shape(
            content=mapped(_ASSISTANT_PART),
            tool_calls=mapped(_TOOL_CALL),
            refusal=MAPPED,
            name=_NAME,
            audio=ignored("a reference to an earlier audio answer; dropped."),
            function_call=refused(LEGACY),
        ),
        "tool": shape(content=mapped(_ASSISTANT_PART), tool_call_id=MAPPED),
        "function": refused(LEGACY),
    },
    unknown_validated=True,
)
_TOOL = Variants(
    "type",
    {
        "function": shape(
            function=mapped(
                shape(
                    name=MAPPED,
                    description=MAPPED,
                    parameters=MAPPED,
                    strict=ignored("Claude Code validates tool input against the schema itself."),
                )
            )
        ),
        "custom": ignored("custom (free-form input) tools are not offered; dropped."),
    },
    unknown_validated=True,
)

REQUEST = shape(
    model=MAPPED,
    messages=mapped(_MESSAGE),
    stream=MAPPED,
    stream_options=refused_when(
        _without_stream,
        "'stream' is not true",
        "'stream_options' is only allowed when 'stream' is true.",
        inner=shape(include_usage=MAPPED, include_obfuscation=NOT_USED),
    ),
    max_tokens=MAPPED,
    max_completion_tokens=MAPPED,
    stop=MAPPED,
    n=refused_when(_more_than_one, "n > 1", "Claude returns one choice per request; use n=1."),
    temperature=SAMPLING,
    top_p=SAMPLING,
    presence_penalty=SAMPLING,
    frequency_penalty=SAMPLING,
    logit_bias=SAMPLING,
    seed=SAMPLING,
    logprobs=refused_when(_true, "true", "Claude does not return log probabilities.", otherwise="ignored"),
    top_logprobs=refused_when(_set, "set", "Claude does not return log probabilities.", otherwise="ignored"),
    user=NOT_USED,
    safety_identifier=NOT_USED,
    metadata=NOT_USED,
    store=ignored("nothing is stored; the answer is the same."),
    service_tier=ignored("Claude Code's requests take its own service tier."),
    prompt_cache_key=ignored("Claude Code manages its prompt cache."),
    prompt_cache_retention=ignored("Claude Code manages its prompt cache."),
    prompt_cache_options=ignored("Claude Code manages its prompt cache."),
    moderation=ignored("moderation is not offered; the answer is the same."),
    verbosity=ignored("a length hint; Claude Code answers as it does."),
    prediction=ignored("a latency hint; the answer is the same."),
    web_search_options=ignored(
        "web search is a hosted tool the gateway cannot offer; Claude answers without it."
    ),
    tools=mapped(_TOOL),
    tool_choice=mapped(
        Variants("type", {"function": shape(function=mapped(shape(name=MAPPED)))}, unknown_validated=True)
    ),
    parallel_tool_calls=mapped(reason="false: at most one call per answer, through the system prompt."),
    response_format=mapped(
        Variants(
            "type",
            {
                "text": shape(),
                "json_object": shape(),
                "json_schema": shape(
                    json_schema=mapped(shape(name=MAPPED, description=MAPPED, schema=MAPPED, strict=MAPPED))
                ),
            },
            unknown_validated=True,
        )
    ),
    reasoning_effort=mapped(reason="Claude Code's --effort (none and minimal become low)."),
    audio=refused("audio output is not supported."),
    modalities=refused_when(
        _audio, "anything but text", "only text output is supported.", otherwise="ignored"
    ),
    functions=refused(LEGACY),
    function_call=refused(LEGACY),
)

POLICY = Policy("/v1/chat/completions", REQUEST)
