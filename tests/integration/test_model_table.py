"""Model ids per credential kind, through the gateway and the real CLI against the mock: unpinned Bedrock
and Vertex credentials answer in the table's ids without a probe call, the operator's table reaches the
upstream path, a credential's own pins win, and a key reaches (lists, answers) only what its credentials
serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from claude_code_api.store.credential_kinds import CredentialOptions
from claude_code_api.upstream import ModelPins
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import MockAnthropic, RecordedRequest
from tests.integration.test_credential_routing import CONSOLE_KEY, add, key_on
from tests.integration.test_upstream_kinds import external_account

OPERATOR_TABLE = """
[bedrock]
claude-sonnet-4-5 = "us.anthropic.operator-sonnet-v1:0"
sonnet = "us.anthropic.operator-family-sonnet-v1:0"

[vertex]
opus = ""
claude-opus-4-6 = "claude-opus-4-6@operator"
"""


@pytest.fixture
def gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    table = tmp_path / "models.toml"
    table.write_text(OPERATOR_TABLE)
    settings = make_settings(tmp_path / "data", mock_anthropic.url, model_table=table)
    with GatewayServer(settings) as server:
        yield server
    assert not claude_processes()


@pytest.fixture
def plain_gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    """A gateway with the built-in ids only (no models.toml in its DATA_DIR), whose processes live on:
    a spare is started ahead of need, and a process answers the next request in another model."""
    with GatewayServer(make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1)) as server:
        yield server
    assert not claude_processes()


def ask(server: GatewayServer, key: str, model: str, *, stream: bool = False) -> str:
    messages = [{"role": "user", "content": f"on {model}"}]
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        if stream:
            chunks = client.chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        answer = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        return answer.choices[0].message.content or ""


def probes(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """The calls Claude Code makes to find out which model ids an unpinned upstream knows."""
    return [
        r for r in requests if r.is_model_call and isinstance(r.body, dict) and r.body.get("max_tokens") == 1
    ]


def add_bedrock(
    server: GatewayServer, url: str, name: str = "bedrock", models: ModelPins | None = None
) -> None:
    options = CredentialOptions(region="us-east-1", base_url=url, models=models or ModelPins())
    add(server, name, "bedrock", options, api_key="bedrock-api-key")


def add_vertex(server: GatewayServer, mock: MockAnthropic, tmp_path: Path, name: str = "vertex") -> None:
    options = CredentialOptions(region="us-east5", project="project-1", base_url=f"{mock.url}/v1")
    add(server, name, "vertex", options, google_credentials=external_account(mock, tmp_path, "subject"))


# --- no probes, the table's ids on the wire ---------------------------------------------------------


def test_an_unpinned_bedrock_credential_answers_in_the_tables_ids_without_probing(
    plain_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    add_bedrock(plain_gateway, mock_anthropic.url)
    key = key_on(plain_gateway, ["bedrock"])

    assert ask(plain_gateway, key, "claude-sonnet-4-5") == "Echo: on claude-sonnet-4-5"
    # The same upstream id by another name: the live process answers without a switch.
    assert ask(plain_gateway, key, "sonnet", stream=True) == "Echo: on sonnet"
    assert ask(plain_gateway, key, "claude-sonnet-4-5-20250929") == "Echo: on claude-sonnet-4-5-20250929"

    assert probes(mock_anthropic.requests) == []
    assert [r.path for r in mock_anthropic.model_requests] == [
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
    ] * 3


def test_an_unpinned_vertex_credential_answers_in_the_tables_ids_without_probing(
    plain_gateway: GatewayServer, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    add_vertex(plain_gateway, mock_anthropic, tmp_path)
    key = key_on(plain_gateway, ["vertex"])

    assert ask(plain_gateway, key, "claude-sonnet-4-5") == "Echo: on claude-sonnet-4-5"
    assert ask(plain_gateway, key, "claude-sonnet-4-5-20250929", stream=True) == (
        "Echo: on claude-sonnet-4-5-20250929"
    )

    assert probes(mock_anthropic.requests) == []
    prefix = "/v1/projects/project-1/locations/us-east5/publishers/anthropic/models/"
    assert [r.path for r in mock_anthropic.model_requests] == [
        f"{prefix}claude-sonnet-4-5@20250929:streamRawPredict"
    ] * 2


def test_a_cloud_process_checks_a_model_it_switches_to_once(
    plain_gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    # Claude Code's own set_model asks a Bedrock or Vertex upstream once whether a model it has not run
    # yet is there (a `max_tokens: 1` call); switching back and forth later costs nothing more.
    add_bedrock(plain_gateway, mock_anthropic.url)
    key = key_on(plain_gateway, ["bedrock"])

    switches = ("claude-sonnet-4-5", "claude-haiku-4-5") * 2
    for model in switches:
        assert ask(plain_gateway, key, model) == f"Echo: on {model}"
    checked = [r.model for r in probes(mock_anthropic.requests)]
    # Which pooled process answers which request is the pool's choice; each checks a model once at most.
    assert set(checked) <= {
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    }
    assert 1 <= len(checked) <= 2

    for model in switches:
        assert ask(plain_gateway, key, model) == f"Echo: on {model}"
    assert len(probes(mock_anthropic.requests)) == len(checked)
    assert len(mock_anthropic.model_requests) == 2 * len(switches) + len(checked)


# --- the operator's table, and pins over it ----------------------------------------------------------


def test_the_operator_table_reaches_the_upstream_path(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    add_bedrock(gateway, mock_anthropic.url)
    key = key_on(gateway, ["bedrock"])

    ask(gateway, key, "claude-sonnet-4-5")
    ask(gateway, key, "sonnet")
    ask(gateway, key, "claude-haiku-4-5")  # not in the operator's table: the built-in id

    assert probes(mock_anthropic.requests) == []
    assert [r.model for r in mock_anthropic.model_requests] == [
        "us.anthropic.operator-sonnet-v1:0",
        "us.anthropic.operator-family-sonnet-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    ]


def test_a_credentials_own_pins_win_over_the_operator_table(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    add_bedrock(gateway, mock_anthropic.url, models=ModelPins(sonnet="us.anthropic.pinned-sonnet-v1:0"))
    key = key_on(gateway, ["bedrock"])

    ask(gateway, key, "sonnet")
    ask(gateway, key, "gpt-4-turbo")  # an OpenAI alias of sonnet

    assert [r.model for r in mock_anthropic.model_requests] == ["us.anthropic.pinned-sonnet-v1:0"] * 2


# --- what a key reaches --------------------------------------------------------------------------------


def test_a_key_on_a_restricted_credential_lists_and_answers_only_what_it_reaches(
    gateway: GatewayServer, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    add_vertex(gateway, mock_anthropic, tmp_path)
    key = key_on(gateway, ["vertex"])

    with openai.OpenAI(api_key=key, base_url=gateway.base_url, max_retries=0) as client:
        listed = [model.id for model in client.models.list()]
        assert "sonnet" in listed
        assert "claude-opus-4-6" in listed  # added by the operator
        assert "opus" not in listed
        assert "gpt-4" not in listed  # an alias of opus
        assert client.models.retrieve("sonnet").id == "sonnet"
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("opus")
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError) as refused:
            client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
        assert refused.value.code == "model_not_found"
        assert "'gpt-4'" in refused.value.message
    with anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0) as client:
        page = client.models.list(limit=100)
        assert "opus" not in [model.id for model in page.data]
        assert "claude-opus-4-6" in [model.id for model in page.data]
        with pytest.raises(anthropic.NotFoundError) as unknown:
            client.models.retrieve("opus")
        assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(model="opus", max_tokens=64, messages=[{"role": "user", "content": "hi"}])

    assert mock_anthropic.model_requests == []


def test_a_model_one_credential_cannot_serve_is_answered_by_another_of_the_key(
    gateway: GatewayServer, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    add_vertex(gateway, mock_anthropic, tmp_path)
    add(
        gateway,
        "console",
        "anthropic-api-key",
        CredentialOptions(base_url=mock_anthropic.url),
        api_key=CONSOLE_KEY,
    )
    key = key_on(gateway, ["vertex"], ["console"])

    assert ask(gateway, key, "opus") == "Echo: on opus"
    assert ask(gateway, key, "sonnet", stream=True) == "Echo: on sonnet"
    with openai.OpenAI(api_key=key, base_url=gateway.base_url, max_retries=0) as client:
        listed = [model.id for model in client.models.list()]
    assert {"opus", "gpt-4", "claude-opus-4-6"} <= set(listed)

    [on_console, on_vertex] = mock_anthropic.model_requests
    # First party: Claude Code resolves the family name itself.
    assert (on_console.kind, on_console.credential, on_console.model) == (
        "messages",
        CONSOLE_KEY,
        "claude-opus-5-5",
    )
    assert (on_vertex.kind, on_vertex.model) == ("vertex", "claude-sonnet-5-5")
