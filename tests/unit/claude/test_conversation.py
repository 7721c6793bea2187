"""What a live process holds and how far it is rewound: canonical fingerprints and the rewind plan."""

from __future__ import annotations

import pytest

from claude_code_api.answer.request import ClaudeTurn
from claude_code_api.claude.conversation import EMPTY, HeldConversation, fingerprint, fingerprints


def user(*blocks):
    return ClaudeTurn("user", tuple(blocks))


def assistant(*blocks):
    return ClaudeTurn("assistant", tuple(blocks))


def text(value, **extra):
    return {"type": "text", "text": value, **extra}


def call(call_id="toolu_1", name="mcp__client__get_weather", **arguments):
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def result(content, call_id="toolu_1", **extra):
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        pytest.param(
            [user(text("hi"))], [user(text("hi", cache_control={"type": "ephemeral"}))], id="cache_control"
        ),
        pytest.param([assistant(text("Hel"), text("lo"))], [assistant(text("Hello"))], id="split text"),
        pytest.param([user(result("42"))], [user(result([text("42")]))], id="result as string or blocks"),
        pytest.param(
            [assistant(call(city="Paris", unit="C"))],
            [assistant(call(unit="C", city="Paris"))],
            id="argument order",
        ),
        pytest.param([assistant(text(""), call())], [assistant(call())], id="empty text before a call"),
        pytest.param(
            [assistant(call(path="a"))],
            [assistant(call(path="a", replace_all=False))],
            id="defaults filled in",
        ),
        pytest.param([user(result("x", is_error=False))], [user(result("x"))], id="is_error false"),
    ],
)
def test_what_claude_reads_alike_has_one_fingerprint(sent, echoed):
    assert fingerprint(sent) == fingerprint(echoed)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param([user(text("hi"))], [user(text("hi "))], id="text"),
        pytest.param([user(text("hi"))], [assistant(text("hi"))], id="role"),
        pytest.param([assistant(call("toolu_1"))], [assistant(call("toolu_2"))], id="call id"),
        pytest.param([user(result("x"))], [user(result("x", is_error=True))], id="is_error"),
        pytest.param([user(text("a")), user(text("b"))], [user(text("a"), text("b"))], id="turn boundary"),
    ],
)
def test_what_claude_reads_differently_differs(one, other):
    assert fingerprint(one) != fingerprint(other)


def test_prefix_fingerprints_end_with_the_whole():
    turns = [user(text("a")), assistant(text("b")), user(text("c"))]
    prints = fingerprints(turns)
    assert prints[0] == EMPTY
    assert prints[2] == fingerprint(turns[:2])
    assert prints[-1] == fingerprint(turns)


def two_exchanges() -> tuple[HeldConversation, list[ClaudeTurn]]:
    turns = [user(text("one")), assistant(text("1")), user(text("two")), assistant(text("2"))]
    held = HeldConversation()
    held.begin("uuid-1", EMPTY)
    held.settle(fingerprint(turns[:2]))
    held.begin("uuid-2", fingerprint(turns[:2]))
    held.settle(fingerprint(turns))
    return held, turns


def test_the_exact_conversation_is_continued_without_rewinding():
    held, turns = two_exchanges()
    keep = held.keep_for(fingerprint(turns))
    assert keep == 2
    assert held.rewinds_for(keep) == []


def test_an_earlier_point_is_reached_by_rewinding_the_later_prompts_last_first():
    held, turns = two_exchanges()
    assert held.keep_for(fingerprint(turns[:2])) == 1
    assert held.rewinds_for(1) == ["uuid-2"]
    assert held.rewinds_for(0) == ["uuid-2", "uuid-1"]


def test_a_new_conversation_empties_the_process():
    held, _ = two_exchanges()
    assert held.keep_for(EMPTY) == 0
    held.truncate(0)
    assert held.exchanges == []
    assert held.whole == EMPTY


def test_a_history_the_process_never_held_cannot_be_reached():
    held, turns = two_exchanges()
    assert held.keep_for(fingerprint([*turns, user(text("three"))])) is None
    assert held.keep_for(fingerprint([user(text("other"))])) is None


def test_truncating_records_the_start_of_the_first_removed_exchange():
    held, turns = two_exchanges()
    held.truncate(1)
    assert held.whole == fingerprint(turns[:2])
    assert [exchange.prompt_uuid for exchange in held.exchanges] == ["uuid-1"]


def test_a_process_started_on_a_history_cannot_be_emptied():
    replayed = [user(text("old")), assistant(text("reply"))]
    held = HeldConversation(floor=fingerprint(replayed))
    assert held.whole == fingerprint(replayed)
    assert held.keep_for(fingerprint(replayed)) == 0
    assert held.keep_for(EMPTY) is None


def test_an_undescribable_answer_can_still_be_rewound():
    held = HeldConversation()
    held.begin("uuid-1", EMPTY)
    held.settle(None)
    assert held.keep_for(EMPTY) == 0
    assert held.rewinds_for(0) == ["uuid-1"]
