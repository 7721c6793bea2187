"""Tests of apis/anthropic_messages/models.py: the model list in Anthropic's shape."""

from __future__ import annotations

import pytest

from claude_code_api.apis.anthropic_messages.models import anthropic_model_list, display_name
from claude_code_api.catalog import model_ids
from claude_code_api.errors import (
    InvalidRequestError,
)


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku"),
        ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
        ("claude-opus-4-1-20250805", "Claude Opus 4.1"),
        ("sonnet", "Claude Sonnet (latest)"),
        ("gpt-4", "gpt-4 (alias of opus)"),
    ],
)
def test_models_have_readable_names(model_id: str, name: str):
    assert display_name(model_id) == name


def test_model_list_pages_by_cursor():
    ids = model_ids()

    first = anthropic_model_list(ids, limit=2)
    after = anthropic_model_list(ids, limit=2, after_id=first["last_id"])
    before = anthropic_model_list(ids, limit=5, before_id=after["first_id"])
    everything = anthropic_model_list(ids, limit=1000)

    assert [m["id"] for m in first["data"]] == ids[:2]
    assert first["has_more"] is True
    assert [m["id"] for m in after["data"]] == ids[2:4]
    assert [m["id"] for m in before["data"]] == ids[:2]
    assert before["has_more"] is False
    assert len(everything["data"]) == len(ids)
    assert everything["has_more"] is False
    assert (everything["first_id"], everything["last_id"]) == (ids[0], ids[-1])


def test_model_list_refuses_an_unknown_cursor():
    with pytest.raises(InvalidRequestError) as caught:
        anthropic_model_list(model_ids(), after_id="claude-9")

    assert caught.value.param == "after_id"
