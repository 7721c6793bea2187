"""Tests of model_table.py: the upstream id of each gateway model name per credential kind, the operator's
table over the built-in one, pins over both, what a key reaches, and the table file's errors."""

from __future__ import annotations

import json

import pytest

from claude_code_api.catalog import LISTED_CLAUDE_IDS, model_ids
from claude_code_api.errors import ModelNotFoundError, ModelTableError
from claude_code_api.model_table import (
    BUILT_IN_IDS,
    BUILT_IN_MODELS,
    bedrock_geography,
    parse_model_table,
)
from claude_code_api.upstream import ModelPins, UpstreamCredential

SUBSCRIPTION = UpstreamCredential("subscription", secret="sk-ant-oat01-x", name="sub")
CONSOLE = UpstreamCredential("anthropic-api-key", secret="sk-ant-api03-x", name="console")
FOUNDRY = UpstreamCredential("foundry", secret="f", resource="res", name="foundry")
GOOGLE_FILE = json.dumps({"type": "external_account"})


def bedrock(region: str = "us-east-1", models: ModelPins | None = None) -> UpstreamCredential:
    return UpstreamCredential(
        "bedrock", secret="b", region=region, name="bedrock", models=models or ModelPins()
    )


def vertex(models: ModelPins | None = None) -> UpstreamCredential:
    return UpstreamCredential(
        "vertex",
        credentials_json=GOOGLE_FILE,
        project="p",
        region="us-east5",
        name="vertex",
        models=models or ModelPins(),
    )


# --- the built-in ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bedrock_id", "vertex_id"),
    [
        ("claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5@20250929"),
        ("claude-opus-4-5", "us.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5@20251101"),
        ("claude-haiku-4-5", "us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5@20251001"),
        (
            "claude-opus-4-1-20250805",
            "us.anthropic.claude-opus-4-1-20250805-v1:0",
            "claude-opus-4-1@20250805",
        ),
        (
            "claude-sonnet-4-20250514",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "claude-sonnet-4@20250514",
        ),
        (
            "claude-3-7-sonnet-20250219",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "claude-3-7-sonnet@20250219",
        ),
        (
            "claude-3-5-haiku-20241022",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "claude-3-5-haiku@20241022",
        ),
        (
            "claude-sonnet-4-5-20250929",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4-5@20250929",
        ),
        # The families: Claude Code's alias table per provider (CLI 2.1.337).
        ("opus", "us.anthropic.claude-opus-5-5", "claude-opus-5-5"),
        ("sonnet", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-5-5"),
        ("haiku", "us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5@20251001"),
    ],
)
def test_bedrock_and_vertex_get_claude_codes_own_ids(name, bedrock_id, vertex_id):
    assert BUILT_IN_MODELS.upstream_model(bedrock(), name) == bedrock_id
    assert BUILT_IN_MODELS.upstream_model(vertex(), name) == vertex_id


def test_every_listed_model_has_a_built_in_id_on_bedrock_and_vertex():
    for kind in ("bedrock", "vertex"):
        assert {"opus", "sonnet", "haiku", *LISTED_CLAUDE_IDS} <= set(BUILT_IN_IDS[kind])


@pytest.mark.parametrize(
    ("region", "geography"),
    [
        ("us-east-1", "us"),
        ("us-west-2", "us"),
        ("us-gov-west-1", "us-gov"),
        ("eu-west-1", "eu"),
        ("eu-central-1", "eu"),
        ("ap-northeast-1", "apac"),
        ("ap-southeast-2", "apac"),
        ("ca-central-1", "global"),
        ("sa-east-1", "global"),
    ],
)
def test_the_bedrock_geography_follows_the_region_as_claude_code_chooses_it(region, geography):
    assert bedrock_geography(region) == geography
    assert BUILT_IN_MODELS.upstream_model(bedrock(region), "claude-sonnet-4-5") == (
        f"{geography}.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )


@pytest.mark.parametrize("credential", [SUBSCRIPTION, CONSOLE, FOUNDRY], ids=lambda c: c.kind)
@pytest.mark.parametrize("name", ["sonnet", "claude-sonnet-4-5", "claude-opus-4-6", "claude-3-opus-20240229"])
def test_first_party_kinds_take_every_name_as_it_is(credential, name):
    assert BUILT_IN_MODELS.upstream_model(credential, name) == name


@pytest.mark.parametrize("credential", [bedrock(), vertex()], ids=lambda c: c.kind)
def test_bedrock_and_vertex_do_not_serve_a_name_without_an_id(credential):
    assert BUILT_IN_MODELS.upstream_model(credential, "claude-opus-4-6") is None


# --- precedence: pins > operator > built-in -------------------------------------------------------

OPERATOR = parse_model_table(
    """
[bedrock]
sonnet = "eu.anthropic.claude-sonnet-4-6"
claude-sonnet-4-5 = "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc"
claude-3-5-haiku-20241022 = ""
claude-opus-4-6 = "us.anthropic.claude-opus-4-6-v1"

[vertex]
opus = ""

[subscription]
claude-3-7-sonnet-20250219 = ""
""",
    "models.toml",
)


def test_the_operator_table_overrides_the_built_in_ids_verbatim():
    assert OPERATOR.upstream_model(bedrock("eu-west-1"), "claude-sonnet-4-5") == (
        "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc"
    )
    assert OPERATOR.upstream_model(bedrock("eu-west-1"), "sonnet") == "eu.anthropic.claude-sonnet-4-6"
    # What the operator did not name keeps its built-in id.
    assert (
        OPERATOR.upstream_model(bedrock("eu-west-1"), "haiku")
        == "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
    )


def test_the_operator_table_adds_and_removes_models():
    assert OPERATOR.upstream_model(bedrock(), "claude-opus-4-6") == "us.anthropic.claude-opus-4-6-v1"
    assert OPERATOR.upstream_model(bedrock(), "claude-3-5-haiku-20241022") is None
    assert OPERATOR.upstream_model(vertex(), "opus") is None
    assert OPERATOR.upstream_model(SUBSCRIPTION, "claude-3-7-sonnet-20250219") is None
    assert OPERATOR.upstream_model(CONSOLE, "claude-3-7-sonnet-20250219") == "claude-3-7-sonnet-20250219"


def test_a_credentials_own_pins_win_over_both_tables():
    pins = ModelPins(sonnet="eu.anthropic.pinned-sonnet", opus="eu.anthropic.pinned-opus")
    credential = bedrock("eu-west-1", pins)
    assert OPERATOR.upstream_model(credential, "sonnet") == "eu.anthropic.pinned-sonnet"
    assert OPERATOR.upstream_model(credential, "opus") == "eu.anthropic.pinned-opus"
    assert OPERATOR.upstream_model(vertex(ModelPins(opus="claude-opus-4-1@20250805")), "opus") == (
        "claude-opus-4-1@20250805"
    )


def test_bedrock_and_vertex_processes_get_every_family_pinned():
    assert BUILT_IN_MODELS.pinned(bedrock("eu-west-1")).models == ModelPins(
        opus="eu.anthropic.claude-opus-5-5",
        sonnet="eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        haiku="eu.anthropic.claude-haiku-4-5-20251001-v1:0",
    )
    # A family the operator took away keeps the built-in pin: no probe for it either.
    assert OPERATOR.pinned(vertex()).models == ModelPins(
        opus="claude-opus-5-5", sonnet="claude-sonnet-5-5", haiku="claude-haiku-4-5@20251001"
    )
    own = ModelPins(default="d", sonnet="s")
    assert OPERATOR.pinned(bedrock(models=own)).models == ModelPins(
        default="d",
        opus="us.anthropic.claude-opus-5-5",
        sonnet="s",
        haiku="us.anthropic.claude-haiku-4-5-20251001-v1:0",
    )


def test_first_party_credentials_stay_as_they_are_without_an_entry():
    assert BUILT_IN_MODELS.pinned(SUBSCRIPTION) == SUBSCRIPTION
    table = parse_model_table('[subscription]\nsonnet = "claude-sonnet-4-5"\n', "t")
    assert table.pinned(SUBSCRIPTION).models == ModelPins(sonnet="claude-sonnet-4-5")


# --- what a key reaches ---------------------------------------------------------------------------


def test_credentials_that_cannot_serve_a_model_leave_its_ranks():
    vertex_without_opus = vertex()
    ranks = ((vertex_without_opus,), (CONSOLE, bedrock()))
    assert OPERATOR.serving(ranks, "opus") == ((CONSOLE, bedrock()),)
    assert OPERATOR.serving(ranks, "sonnet") == ranks
    assert OPERATOR.serving(((vertex_without_opus,),), "opus") == ()


def test_a_first_party_key_reaches_the_whole_catalog():
    assert BUILT_IN_MODELS.reachable_models([SUBSCRIPTION]) == model_ids()


def test_a_key_lists_the_union_of_what_its_credentials_serve():
    assert "opus" not in OPERATOR.reachable_models([vertex()])
    assert "gpt-4" not in OPERATOR.reachable_models([vertex()])  # its target, opus, is unserved
    assert "gpt-4-turbo" in OPERATOR.reachable_models([vertex()])
    both = OPERATOR.reachable_models([vertex(), bedrock()])
    assert {"opus", "gpt-4", "claude-opus-4-6"} <= set(both)
    assert "claude-3-5-haiku-20241022" not in OPERATOR.reachable_models([bedrock()])


def test_reaches_knows_served_names_that_are_not_listed():
    assert BUILT_IN_MODELS.reaches([SUBSCRIPTION], "claude-opus-4-6")
    assert not BUILT_IN_MODELS.reaches([bedrock()], "claude-opus-4-6")
    assert BUILT_IN_MODELS.reaches([bedrock()], "claude-sonnet-4-5-20250929")
    with pytest.raises(ModelNotFoundError):
        BUILT_IN_MODELS.reaches([SUBSCRIPTION], "gpt-4o")


# --- the file --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[bedrock\nsonnet = 'x'", "models.toml is not valid TOML: "),
        ("[openai]\nsonnet = 'x'", "models.toml: [openai] is not a credential kind; expected subscription, "),
        ("bedrock = 'x'", "models.toml: bedrock must be a table ([bedrock]) of model names"),
        ("[bedrock]\nsonnet = 1", 'models.toml: [bedrock] sonnet: must be a model id in quotes ("" when'),
        ("[bedrock]\nsonnet = ' us.x'", "models.toml: [bedrock] sonnet: a model id has no blanks"),
        ('[bedrock]\nsonnet = "us.x\\t"', "models.toml: [bedrock] sonnet: a model id has no blanks"),
        (
            "[vertex]\ngpt-4 = 'x'",
            "models.toml: [vertex] gpt-4: an OpenAI alias of opus; map that name instead",
        ),
        ("[vertex]\nmistral = 'x'", "models.toml: [vertex] mistral: not a model name the gateway accepts"),
        ("[vertex.sonnet]\nid = 'x'", "models.toml: [vertex] sonnet: must be a model id in quotes"),
    ],
)
def test_a_malformed_table_is_one_line_naming_its_problem(text, problem):
    with pytest.raises(ModelTableError) as caught:
        parse_model_table(text, "models.toml")
    assert caught.value.message.startswith(problem)
    assert "\n" not in caught.value.message


def test_an_empty_table_is_the_built_in_one():
    assert parse_model_table("", "models.toml").operator == {}
