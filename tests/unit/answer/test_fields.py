"""Tests of answer/fields.py: the field-policy mechanism, on a small table of its own."""

from __future__ import annotations

from typing import Any

import pytest

from claude_code_api.answer.fields import (
    HEADER_NAMES_LIMIT,
    MAPPED,
    Policy,
    Variants,
    apply_policy,
    class_counts,
    header_value,
    ignored,
    mapped,
    refused,
    refused_when,
    shape,
    table_rows,
)
from claude_code_api.errors import UnsupportedParameterError

POLICY = Policy(
    "/test",
    shape(
        model=MAPPED,
        n=refused_when(lambda value, _parent: value > 1, "n > 1", "one choice only."),
        temperature=ignored("sampling."),
        audio=refused("audio output."),
        include=mapped(
            values={"useful": MAPPED, "nothing": ignored("adds nothing."), "logprobs": refused("no.")}
        ),
        messages=mapped(
            Variants(
                "role",
                {
                    "user": shape(
                        content=mapped(
                            Variants(
                                "type",
                                {
                                    "text": shape(text=MAPPED, cache_control=ignored("cache.")),
                                    "thinking": ignored("earlier thinking."),
                                    "file": refused("files."),
                                },
                            )
                        )
                    ),
                },
                unknown_validated=True,
            )
        ),
        tools=mapped(Variants("type", {"custom": shape(name=MAPPED)}, default="custom")),
        echoed=ignored("restated.", keep=True),
    ),
)


def user(*content: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


@pytest.mark.parametrize(
    ("document", "kept", "named"),
    [
        ({"model": "m"}, {"model": "m"}, ()),
        ({"model": "m", "temperature": 0.3}, {"model": "m"}, ("temperature",)),
        # a conditional row: mapped where its condition does not hold
        ({"n": 1}, {"n": 1}, ()),
        # a value of the wrong type is left to Pydantic, not a crash here
        ({"n": "two"}, {"n": "two"}, ()),
        # unknown fields are ignored like known ignored ones, at any depth
        ({"frobnicate": 1}, {}, ("frobnicate",)),
        (
            {"messages": [user({"type": "text", "text": "hi", "cache_control": {}, "new": 1})]},
            {"messages": [user({"type": "text", "text": "hi"})]},
            ("messages[0].content[0].cache_control", "messages[0].content[0].new"),
        ),
        # a whole ignored kind is dropped and named by its place
        (
            {"messages": [user({"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "hi"})]},
            {"messages": [user({"type": "text", "text": "hi"})]},
            ("messages[0].content[0]",),
        ),
        # unknown kinds are dropped too; unknown roles are left to Pydantic (unknown_validated)
        ({"tools": [{"type": "web_search"}, {"name": "f"}]}, {"tools": [{"name": "f"}]}, ("tools[0]",)),
        ({"messages": [{"role": "wizard"}]}, {"messages": [{"role": "wizard"}]}, ()),
        # a single object of an ignored kind: the field goes
        ({"tools": {"type": "web_search"}}, {}, ("tools",)),
        # values of a list of strings
        ({"include": ["useful", "nothing", "new"]}, {"include": ["useful"]}, ("include[1]", "include[2]")),
        # strings where objects may be are left alone
        (
            {"messages": [{"role": "user", "content": "hi"}]},
            {"messages": [{"role": "user", "content": "hi"}]},
            (),
        ),
        # an ignored field kept for the API to restate
        ({"echoed": {"a": 1}}, {"echoed": {"a": 1}}, ("echoed",)),
    ],
)
def test_policy_keeps_mapped_fields_and_names_the_rest(document, kept, named):
    applied = apply_policy(document, POLICY)
    assert applied.document == kept
    assert applied.ignored == named


@pytest.mark.parametrize(
    ("document", "param"),
    [
        ({"n": 2}, "n"),
        ({"audio": {}}, "audio"),
        ({"include": ["logprobs"]}, "include[0]"),
        ({"messages": [user({"type": "text", "text": "a"}, {"type": "file"})]}, "messages[0].content[1]"),
    ],
)
def test_refused_field_is_a_400_naming_it(document, param):
    with pytest.raises(UnsupportedParameterError) as raised:
        apply_policy(document, POLICY)
    assert raised.value.param == param
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("document", "param"),
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"messages": [user({"type": "text", "text": "hi", "new": 1})]}, "messages[0].content[0].new"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"include": ["new"]}, "include[0]"),
    ],
)
def test_strict_mode_refuses_unknown_fields_by_name(document, param):
    with pytest.raises(UnsupportedParameterError) as raised:
        apply_policy(document, POLICY, strict=True)
    assert raised.value.param == param
    assert "STRICT_REQUEST_FIELDS" in raised.value.message


def test_strict_mode_still_ignores_known_ignored_fields():
    assert apply_policy({"temperature": 1}, POLICY, strict=True).ignored == ("temperature",)


@pytest.mark.parametrize("document", [[], "text", None, 3])
def test_a_document_that_is_not_an_object_is_left_to_pydantic(document):
    assert apply_policy(document, POLICY).document == document


def test_header_lists_each_path_once_and_says_how_many_more():
    assert header_value(["temperature", "tools[3].defer_loading", "temperature"]) == (
        "temperature, tools[3].defer_loading"
    )
    many = [f"f{n}" for n in range(HEADER_NAMES_LIMIT + 5)]
    assert header_value(many).endswith(", f39, (+5 more)")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\r\nx-forged: 1", "a\\u000d\\u000ax-forged: 1"),
        ("ключ", "\\u043a\\u043b\\u044e\\u0447"),
        ("a,b", "a\\u002cb"),
        ("x" * 500, "x" * 100 + "..."),
    ],
)
def test_header_escapes_what_a_header_cannot_carry(name, shown):
    assert header_value([name]) == shown
    header_value([name]).encode("ascii")


def test_rows_list_every_field_with_its_class():
    rows = {row.path: row.kind for row in table_rows(POLICY)}
    assert rows["temperature"] == "ignored"
    assert rows["n"] == "refused"
    assert rows["include[] = nothing"] == "ignored"
    assert rows["messages{role: user}.content{type: text}.cache_control"] == "ignored"
    assert rows["messages{role: user}.content{type: file}"] == "refused"
    assert class_counts(POLICY) == {"mapped": 11, "ignored": 5, "refused": 4}
