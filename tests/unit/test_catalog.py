"""Tests of catalog.py: model names, OpenAI aliases and the /v1/models list."""

from __future__ import annotations

import pytest
from openai.types import Model as OpenAIModel

from claude_code_api.catalog import (
    CATALOG_CREATED,
    ModelChoice,
    model_ids,
    openai_model,
    openai_model_list,
    resolve_model,
)
from claude_code_api.errors import ModelNotFoundError, NotFoundError


@pytest.mark.parametrize(
    ("alias", "claude_model"),
    [
        ("gpt-4", "opus"),
        ("gpt-4-turbo", "sonnet"),
        ("gpt-3.5-turbo", "claude-3-5-haiku-20241022"),
    ],
)
def test_openai_alias_resolves_to_its_claude_model(alias, claude_model):
    assert resolve_model(alias) == ModelChoice(requested=alias, claude_model=claude_model)


@pytest.mark.parametrize(
    "name",
    [
        "opus",
        "sonnet",
        "haiku",
        "claude-opus-4-5",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-20250514",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
        "claude-3-opus-20240229",
        "claude-3-5-sonnet-latest",
    ],
)
def test_claude_family_or_full_id_is_passed_on_unchanged(name):
    assert resolve_model(name) == ModelChoice(requested=name, claude_model=name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "gpt-4o",
        "gpt-4-0613",
        "GPT-4",
        "o1",
        "claude",
        "claude-2",
        "claude-2.1",
        "claude-instant-1.2",
        "Claude-sonnet-4-5",
        "claude-sonnet-4-5 ",
        " claude-sonnet-4-5",
        "claude-sonnet-4-5\n",
        "claude-sonnet-4-5/../../etc",
        "claude-sonnet-4-5;rm",
        "opus-4",
        "mistral-large",
    ],
)
def test_unknown_model_is_model_not_found_404(name):
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model(name)
    error = caught.value
    assert isinstance(error, NotFoundError)
    assert error.status == 404
    assert error.code == "model_not_found"
    assert error.param == "model"
    assert f"'{name}'" in error.message
    assert error.to_body()["error"]["code"] == "model_not_found"


def test_model_list_has_openai_shape():
    listing = openai_model_list()
    assert listing["object"] == "list"
    data = listing["data"]
    assert isinstance(data, list)
    assert [entry["id"] for entry in data] == model_ids()
    for entry in data:
        assert entry == {
            "id": entry["id"],
            "object": "model",
            "created": CATALOG_CREATED,
            "owned_by": "anthropic",
        }
        assert OpenAIModel.model_validate(entry).id == entry["id"]


def test_model_list_names_families_full_ids_and_aliases_once_each():
    ids = model_ids()
    assert len(ids) == len(set(ids))
    assert ids[:3] == ["opus", "sonnet", "haiku"]
    assert {"gpt-4", "gpt-4-turbo", "gpt-3.5-turbo", "claude-sonnet-4-5", "claude-3-5-haiku-20241022"} <= set(
        ids
    )


def test_every_listed_model_resolves():
    for model_id in model_ids():
        assert resolve_model(model_id).requested == model_id


@pytest.mark.parametrize("model_id", ["gpt-4", "sonnet", "claude-sonnet-4-20250514"])
def test_one_model_has_openai_shape(model_id):
    assert openai_model(model_id) == {
        "id": model_id,
        "object": "model",
        "created": CATALOG_CREATED,
        "owned_by": "anthropic",
    }


def test_one_unknown_model_is_model_not_found():
    with pytest.raises(ModelNotFoundError):
        openai_model("gpt-4o")
