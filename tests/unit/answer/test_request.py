"""Tests of answer/request.py, blocks.py and tools.py: the rules every API shares."""

from __future__ import annotations

from typing import get_args

import pytest
from claude_agent_sdk.types import EffortLevel

from claude_code_api.answer.blocks import (
    EMPTY_TURN_TEXT,
    json_arguments,
    text_block,
    tool_use_block,
    without_empty_text,
)
from claude_code_api.answer.request import EFFORT_LEVELS, ClaudeTurn, claude_conversation, claude_effort
from claude_code_api.answer.tools import ClientTool, client_tool_list, client_tool_name
from claude_code_api.errors import InvalidRequestError


@pytest.mark.parametrize(
    ("effort", "level"),
    [
        (None, None),
        # OpenAI's levels below Claude Code's lowest
        ("none", "low"),
        ("minimal", "low"),
        # Claude Code's own levels, which Anthropic's API and OpenAI's share, pass through
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("xhigh", "xhigh"),
        ("max", "max"),
    ],
)
def test_effort_maps_to_claude_code_levels(effort, level):
    assert claude_effort(effort) == level


def test_effort_levels_are_the_sdks():
    assert set(get_args(EffortLevel)) == EFFORT_LEVELS


def test_unknown_effort_is_refused():
    with pytest.raises(InvalidRequestError):
        claude_effort("maximum")


PLACEHOLDER = {"type": "text", "text": EMPTY_TURN_TEXT}
TOOL_USE = tool_use_block("toolu_1", "f", {})


@pytest.mark.parametrize(
    ("blocks", "carried"),
    [
        # an empty or blank turn keeps its place with the placeholder (Anthropic refuses both)
        ((text_block(""),), (PLACEHOLDER,)),
        ((text_block("  "),), (PLACEHOLDER,)),
        ((text_block("\n"),), (PLACEHOLDER,)),
        # empty blocks beside others are dropped
        ((text_block(""), text_block("hi")), (text_block("hi"),)),
        ((text_block(" "), TOOL_USE), (TOOL_USE,)),
        # inside a tool result too; a result left without content loses the field
        (
            ({"type": "tool_result", "tool_use_id": "t", "content": [text_block("")]},),
            ({"type": "tool_result", "tool_use_id": "t"},),
        ),
        (
            ({"type": "tool_result", "tool_use_id": "t", "content": " ", "is_error": True},),
            ({"type": "tool_result", "tool_use_id": "t", "is_error": True},),
        ),
        (
            ({"type": "tool_result", "tool_use_id": "t", "content": [text_block(""), text_block("x")]},),
            ({"type": "tool_result", "tool_use_id": "t", "content": [text_block("x")]},),
        ),
    ],
)
def test_empty_text_is_carried_in_a_form_anthropic_accepts(blocks, carried):
    assert without_empty_text(blocks) == carried


def test_an_empty_prompt_stays_the_users_turn():
    turns = [
        ClaudeTurn("user", (text_block("hi"),)),
        ClaudeTurn("assistant", (text_block("hello"),)),
        ClaudeTurn("user", (text_block(""),)),
    ]
    history, prompt = claude_conversation(turns, param="messages")
    assert [turn.role for turn in history] == ["user", "assistant"]
    assert prompt == (PLACEHOLDER,)


def test_client_tool_names_carry_the_prefix_there_and_lose_it_back():
    block = tool_use_block("toolu_1", "get_weather", {"city": "Paris"})
    assert block == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "mcp__client__get_weather",
        "input": {"city": "Paris"},
    }
    assert block["name"] == ClientTool("get_weather", "", {}).claude_name
    assert client_tool_name(block["name"]) == "get_weather"
    assert client_tool_name("Read") is None


def test_tool_names_must_be_unique():
    tool = ClientTool("f", "f", {"type": "object"})
    with pytest.raises(InvalidRequestError):
        client_tool_list([tool, tool])


@pytest.mark.parametrize(
    ("arguments", "parsed"), [(None, {}), ("", {}), ('{"a": 1}', {"a": 1}), ("[1]", None), ("{", None)]
)
def test_json_arguments_must_be_an_object(arguments, parsed):
    assert json_arguments(arguments) == parsed
