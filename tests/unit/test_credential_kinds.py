"""Tests of store/credential_kinds.py: what each kind needs, the bad input it refuses, its environment."""

from __future__ import annotations

import json

import pytest

from claude_code_api.errors import InvalidOAuthTokenError, InvalidRequestError
from claude_code_api.store.credential_kinds import (
    CredentialInput,
    CredentialOptions,
    CredentialSecrets,
    parse_ranks,
    secret_hint,
    validate_credential,
)
from tests.factories import FAKE_OAUTH_TOKEN

SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "acme",
    "private_key_id": "abcdef0123",
    "private_key": "-----BEGIN PRIVATE KEY-----\n",
    "client_email": "g@acme.iam.gserviceaccount.com",
}
EXTERNAL_ACCOUNT = {
    "type": "external_account",
    "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
    "token_url": "https://sts.googleapis.com/v1/token",
    "credential_source": {"file": "/var/run/token"},
}


def given(
    kind: str, name: str = "c", options: CredentialOptions | None = None, **secrets: str
) -> CredentialInput:
    return CredentialInput(
        name=name, kind=kind, secrets=CredentialSecrets(**secrets), options=options or CredentialOptions()
    )


@pytest.mark.parametrize(
    "credential",
    [
        given("subscription", oauth_token=f"  {FAKE_OAUTH_TOKEN}\n"),
        given("anthropic-api-key", api_key="sk-ant-api03-abc"),
        given("bedrock", options=CredentialOptions(region="us-east-1"), api_key="bedrock-api-key"),
        given(
            "bedrock",
            options=CredentialOptions(region="eu-west-1"),
            access_key_id="AKIA",
            secret_access_key="s3cr3t",
            session_token="tok",
        ),
        given(
            "vertex",
            options=CredentialOptions(region="global"),
            google_credentials=json.dumps(SERVICE_ACCOUNT),
        ),
        given(
            "vertex",
            options=CredentialOptions(region="us-east5", project="p"),
            google_credentials=json.dumps(EXTERNAL_ACCOUNT),
        ),
        given("foundry", options=CredentialOptions(resource="acme"), api_key="foundry-key"),
        given("foundry", options=CredentialOptions(base_url="https://acme.example/anthropic"), api_key="k"),
    ],
)
def test_every_kind_is_accepted_with_what_it_needs(credential):
    valid = validate_credential(credential)
    assert valid.kind == credential.kind
    assert all(value == value.strip() for value in valid.secrets.given().values())


@pytest.mark.parametrize(
    ("credential", "message", "param"),
    [
        (given("openai", api_key="x"), "Unknown credential kind 'openai': use one of subscription", "kind"),
        (given("bedrock", api_key="k"), "A bedrock credential needs --region", "region"),
        (given("bedrock", options=CredentialOptions(region="r")), "needs --api-key", "api_key"),
        (
            given("bedrock", options=CredentialOptions(region="r"), access_key_id="AKIA"),
            "needs --secret-access-key",
            "secret_access_key",
        ),
        (
            given("bedrock", options=CredentialOptions(region="r"), api_key="k", access_key_id="AKIA"),
            "not both",
            "api_key",
        ),
        (
            given("vertex", options=CredentialOptions(region="r")),
            "needs --credentials-file",
            "google_credentials",
        ),
        (
            given(
                "vertex", options=CredentialOptions(region="r", project="p"), google_credentials="{not json"
            ),
            "is not JSON",
            "google_credentials",
        ),
        (
            given(
                "vertex", options=CredentialOptions(region="r", project="p"), google_credentials='{"a": 1}'
            ),
            'not a Google credential: its "type" is null',
            "google_credentials",
        ),
        (
            given(
                "vertex",
                options=CredentialOptions(region="r", project="p"),
                google_credentials=json.dumps({"type": "authorized_user"}),
            ),
            "not a Google credential",
            "google_credentials",
        ),
        (
            given(
                "vertex",
                options=CredentialOptions(region="r"),
                google_credentials=json.dumps(EXTERNAL_ACCOUNT),
            ),
            "needs --project",
            "project",
        ),
        (
            given("vertex", google_credentials=json.dumps(SERVICE_ACCOUNT)),
            "needs --region",
            "region",
        ),
        (given("foundry", api_key="k"), "needs --resource", "resource"),
        (given("anthropic-api-key", api_key=FAKE_OAUTH_TOKEN), "add it with --kind subscription", "api_key"),
        (given("anthropic-api-key", api_key="hello"), "starts with 'sk-ant-'", "api_key"),
        (given("anthropic-api-key", oauth_token=FAKE_OAUTH_TOKEN), "takes no --oauth-token", "oauth_token"),
        (given("subscription", name="a,b", oauth_token=FAKE_OAUTH_TOKEN), "letters, digits", "name"),
        (given("subscription", name="", oauth_token=FAKE_OAUTH_TOKEN), "1 to 100", "name"),
        (
            given("subscription", options=CredentialOptions(region="x"), oauth_token=FAKE_OAUTH_TOKEN),
            "takes no --region",
            "region",
        ),
        (
            given("anthropic-api-key", options=CredentialOptions(allow_extra_usage=True), api_key="sk-ant-x"),
            "Only a subscription",
            "allow_extra_usage",
        ),
        (
            given("anthropic-api-key", options=CredentialOptions(base_url="ftp://x"), api_key="sk-ant-x"),
            "not a base URL",
            "base_url",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_option(credential, message, param):
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(")) as refused:
        validate_credential(credential)
    assert refused.value.param == param


def test_a_subscription_without_a_valid_token_is_an_invalid_oauth_token():
    with pytest.raises(InvalidOAuthTokenError):
        validate_credential(given("subscription"))
    with pytest.raises(InvalidOAuthTokenError, match="copied whole"):
        validate_credential(given("subscription", oauth_token="sk-ant-oat01-abc def"))


def test_hint_is_the_main_secrets_last_four_characters():
    assert (
        secret_hint("subscription", CredentialSecrets(oauth_token=FAKE_OAUTH_TOKEN)) == FAKE_OAUTH_TOKEN[-4:]
    )
    assert (
        secret_hint("bedrock", CredentialSecrets(access_key_id="AKIA", secret_access_key="xyz9876")) == "9876"
    )
    assert secret_hint("vertex", CredentialSecrets(google_credentials=json.dumps(SERVICE_ACCOUNT))) == "0123"


def test_secrets_repr_names_fields_but_shows_no_value():
    secrets = CredentialSecrets(api_key="sk-ant-api03-secret")
    assert "secret" not in repr(secrets).replace("CredentialSecrets", "")
    assert "api_key" in repr(secrets)


@pytest.mark.parametrize(
    ("ranks", "parsed"),
    [(["a,b", "c"], (("a", "b"), ("c",))), ([" a , b ,", "c"], (("a", "b"), ("c",))), ([], ())],
)
def test_ranks_are_parsed_one_option_per_rank(ranks, parsed):
    assert parse_ranks(ranks) == parsed


@pytest.mark.parametrize(("ranks", "message"), [(["a", "a"], "named twice"), (["a", " , "], "empty")])
def test_bad_ranks_are_refused(ranks, message):
    with pytest.raises(InvalidRequestError, match=message):
        parse_ranks(ranks)
