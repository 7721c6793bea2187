"""Keys on upstream credentials of every kind, in ranks: each kind answers every API, usage limits and
extra usage move requests to the next credential before the client sees anything, equal ranks share the
load, conversations stay where they are, and instances share what they learn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from claude_code_api.store.credential_kinds import CredentialInput, CredentialOptions, CredentialSecrets
from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, Quota
from tests.integration.test_upstream_kinds import BEDROCK_PINS, VERTEX_PINS, external_account

CONSOLE_KEY = "sk-ant-api03-" + "b" * 40


@pytest.fixture
def gateway(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1)
    with GatewayServer(settings) as server:
        yield server
    assert not claude_processes()


def add(
    server: GatewayServer, name: str, kind: str, options: CredentialOptions | None = None, **secrets: str
) -> None:
    assert server.gateway is not None
    given = CredentialInput(name, kind, CredentialSecrets(**secrets), options or CredentialOptions())
    server.call(server.gateway.keys.credentials.add_credential(given))


def key_on(server: GatewayServer, *ranks: list[str]) -> str:
    assert server.gateway is not None
    _, full_key = server.call(
        server.gateway.keys.create_key("team", None, credentials=[list(r) for r in ranks])
    )
    return full_key


def chat(
    server: GatewayServer, key: str, text: str = "hi", *, stream: bool = False, history: Any = ()
) -> str:
    messages = [*history, {"role": "user", "content": text}]
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        if stream:
            chunks = client.chat.completions.create(model="sonnet", messages=messages, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return (
            client.chat.completions.create(model="sonnet", messages=messages).choices[0].message.content or ""
        )


def every_api(server: GatewayServer, key: str) -> list[str]:
    """One answer of each API, whole and streamed: six requests."""
    answers = [chat(server, key, "chat whole"), chat(server, key, "chat streamed", stream=True)]
    with anthropic.Anthropic(api_key=key, base_url=server.url, max_retries=0) as client:
        message = client.messages.create(
            model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "messages whole"}]
        )
        answers.append(message.content[0].text)  # type: ignore[union-attr]
        with client.messages.stream(
            model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "messages streamed"}]
        ) as stream:
            answers.append(stream.get_final_message().content[0].text)  # type: ignore[union-attr]
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        answers.append(client.responses.create(model="sonnet", input="responses whole").output_text)
        events = client.responses.create(model="sonnet", input="responses streamed", stream=True)
        answers.append("".join(e.delta for e in events if e.type == "response.output_text.delta"))
    return answers


EXPECTED = [
    "Echo: chat whole",
    "Echo: chat streamed",
    "Echo: messages whole",
    "Echo: messages streamed",
    "Echo: responses whole",
    "Echo: responses streamed",
]


@pytest.mark.parametrize(
    "kind", ["subscription", "console", "bedrock-api-key", "bedrock-keys", "vertex", "foundry"]
)
def test_a_key_on_one_credential_of_each_kind_answers_every_api(
    kind: str, gateway: GatewayServer, mock_anthropic: MockAnthropic, tmp_path: Path
) -> None:
    url = mock_anthropic.url
    if kind == "subscription":
        token = make_oauth_token()
        add(gateway, "cred", "subscription", oauth_token=token)
        expected = ("messages", "bearer", token)
    elif kind == "console":
        add(gateway, "cred", "anthropic-api-key", CredentialOptions(base_url=url), api_key=CONSOLE_KEY)
        expected = ("messages", "x-api-key", CONSOLE_KEY)
    elif kind == "bedrock-api-key":
        options = CredentialOptions(region="eu-west-1", base_url=url, models=BEDROCK_PINS)
        add(gateway, "cred", "bedrock", options, api_key="bedrock-api-key")
        expected = ("bedrock", "bearer", "bedrock-api-key")
    elif kind == "bedrock-keys":
        mock_anthropic.add_aws_key("AKIAMOCKEXAMPLE", "secret-access-key")
        options = CredentialOptions(region="eu-west-1", base_url=url, models=BEDROCK_PINS)
        add(
            gateway,
            "cred",
            "bedrock",
            options,
            access_key_id="AKIAMOCKEXAMPLE",
            secret_access_key="secret-access-key",
        )
        expected = ("bedrock", "sigv4", "AKIAMOCKEXAMPLE")
    elif kind == "vertex":
        options = CredentialOptions(
            region="europe-west4",
            project="project-1",
            base_url=f"{url}/v1",
            models=VERTEX_PINS,
        )
        credential_file = external_account(mock_anthropic, tmp_path, "subject-1")
        add(gateway, "cred", "vertex", options, google_credentials=credential_file)
        expected = ("vertex", "bearer", None)
    else:
        add(gateway, "cred", "foundry", CredentialOptions(base_url=f"{url}/anthropic"), api_key="foundry-key")
        expected = ("messages", "x-api-key", "foundry-key")
    key = key_on(gateway, ["cred"])

    assert every_api(gateway, key) == EXPECTED

    requests = mock_anthropic.model_requests
    assert len(requests) == len(EXPECTED)
    for request in requests:
        assert (request.kind, request.auth_scheme) == expected[:2]
        if expected[2] is not None:
            assert request.credential == expected[2]
        if kind == "bedrock-keys":
            assert request.signature_valid is True


def test_a_usage_limit_moves_the_request_to_the_next_rank_until_the_reset(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    limited = make_oauth_token()
    reset = int(time.time()) + 3600
    mock_anthropic.set_quota(limited, Quota.exhausted(reset))
    mock_anthropic.always(ErrorReply.usage_limit(reset), credential=limited)
    add(gateway, "a", "subscription", oauth_token=limited)
    add(gateway, "b", "anthropic-api-key", api_key=CONSOLE_KEY)
    key = key_on(gateway, ["a"], ["b"])

    assert chat(gateway, key, "first") == "Echo: first"
    assert chat(gateway, key, "second", stream=True) == "Echo: second"
    assert chat(gateway, key, "third") == "Echo: third"

    on_a = [r for r in mock_anthropic.model_requests if r.credential == limited]
    on_b = [r for r in mock_anthropic.model_requests if r.credential == CONSOLE_KEY]
    assert len(on_a) == 1
    assert len(on_b) == 3


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_extra_usage_is_spent_only_where_the_operator_allowed_it(
    allowed: bool, gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    paying = make_oauth_token()
    mock_anthropic.set_quota(paying, Quota.extra_usage(int(time.time()) + 3600))
    add(gateway, "c", "subscription", CredentialOptions(allow_extra_usage=allowed), oauth_token=paying)
    add(gateway, "b", "anthropic-api-key", api_key=CONSOLE_KEY)
    key = key_on(gateway, ["c"], ["b"])

    for number in range(3):
        assert chat(gateway, key, f"question {number}") == f"Echo: question {number}"

    on_c = [r for r in mock_anthropic.model_requests if r.credential == paying]
    assert len(on_c) == (3 if allowed else 1)


def test_with_every_credential_at_its_limit_the_client_gets_a_429_until_the_soonest_reset(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    first, second = make_oauth_token(), make_oauth_token()
    now = int(time.time())
    for token, reset in ((first, now + 600), (second, now + 300)):
        mock_anthropic.set_quota(token, Quota.exhausted(reset))
        mock_anthropic.always(ErrorReply.usage_limit(reset), credential=token)
    add(gateway, "first", "subscription", oauth_token=first)
    add(gateway, "second", "subscription", oauth_token=second)
    key = key_on(gateway, ["first"], ["second"])

    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as refused:
            chat(gateway, key, "anyone?", stream=stream)
        retry_after = int(refused.value.response.headers["retry-after"])
        assert 300 - 5 <= retry_after <= 300 + 5


def test_equal_ranks_share_new_conversations_and_a_conversation_stays_on_its_credential(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    one, two = make_oauth_token(), make_oauth_token()
    add(gateway, "one", "subscription", oauth_token=one)
    add(gateway, "two", "subscription", oauth_token=two)
    key = key_on(gateway, ["one", "two"])

    for number in range(10):
        chat(gateway, key, f"new {number}")
    used = {r.credential for r in mock_anthropic.model_requests}
    assert used == {one, two}

    mock_anthropic.reset()
    history: list[Any] = []
    for turn in range(3):
        answer = chat(gateway, key, f"turn {turn}", history=history)
        history += [{"role": "user", "content": f"turn {turn}"}, {"role": "assistant", "content": answer}]
    assert len({r.credential for r in mock_anthropic.model_requests}) == 1


def test_a_credential_exhausted_on_one_instance_is_skipped_by_the_other(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    limited = make_oauth_token()
    reset = int(time.time()) + 3600
    mock_anthropic.set_quota(limited, Quota.exhausted(reset))
    mock_anthropic.always(ErrorReply.usage_limit(reset), credential=limited)
    first = GatewayServer(make_settings(tmp_path / "data", mock_anthropic.url)).start()
    second = GatewayServer(make_settings(tmp_path / "data", mock_anthropic.url)).start()
    try:
        add(first, "a", "subscription", oauth_token=limited)
        add(first, "b", "anthropic-api-key", api_key=CONSOLE_KEY)
        key = key_on(first, ["a"], ["b"])
        assert chat(first, key, "on the first") == "Echo: on the first"
        time.sleep(1.0)  # the second instance reads the states the first recorded every half second

        assert chat(second, key, "on the second") == "Echo: on the second"

        on_a = [r for r in mock_anthropic.model_requests if r.credential == limited]
        assert len(on_a) == 1
    finally:
        first.stop()
        second.stop()


def test_messages_on_a_subscription_carry_its_quota_headers(
    gateway: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    token = make_oauth_token()
    reset = int(time.time()) + 7200
    mock_anthropic.set_quota(
        token, Quota(status="allowed", reset=reset, five_hour_utilization=0.42, five_hour_reset=reset)
    )
    add(gateway, "sub", "subscription", oauth_token=token)
    key = key_on(gateway, ["sub"])
    with anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0) as client:
        client.messages.create(model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "first"}])
        raw = client.messages.with_raw_response.create(
            model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "second"}]
        )
        with client.messages.with_streaming_response.create(
            model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "third"}], stream=True
        ) as streamed:
            streamed_headers = dict(streamed.headers)

    for headers in (raw.headers, streamed_headers):
        assert headers["anthropic-ratelimit-unified-status"] == "allowed"
        assert headers["anthropic-ratelimit-unified-5h-utilization"] == "0.42"
        assert int(headers["anthropic-ratelimit-unified-5h-reset"]) == reset
