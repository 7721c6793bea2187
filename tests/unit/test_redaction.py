"""Tests of security/redaction.py: tokens and keys scrubbed from text and from log records."""

from __future__ import annotations

import logging

import pytest

from claude_code_api.security.redaction import RedactingFilter, redact

OAUTH_TOKEN = "sk-ant-oat01-" + "Zx9_Qw-8Er7Ty6Ui5Op4As3Df2Gh1Jk0" * 3
ANTHROPIC_API_KEY = "sk-ant-api03-" + "aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV_wX-yZ" * 2
GATEWAY_KEY = "sk-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGh"
SECRETS = [OAUTH_TOKEN, ANTHROPIC_API_KEY, GATEWAY_KEY]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OAUTH_TOKEN, "sk-ant-<redacted>"),
        (ANTHROPIC_API_KEY, "sk-ant-<redacted>"),
        (GATEWAY_KEY, "sk-<redacted>"),
        (f"Authorization: Bearer {OAUTH_TOKEN}", "Authorization: Bearer sk-ant-<redacted>"),
        (f'{{"oauth_token": "{OAUTH_TOKEN}"}}', '{"oauth_token": "sk-ant-<redacted>"}'),
        (f"key={GATEWAY_KEY}&model=gpt-4", "key=sk-<redacted>&model=gpt-4"),
        (
            f"token {OAUTH_TOKEN} then key {GATEWAY_KEY}.",
            "token sk-ant-<redacted> then key sk-<redacted>.",
        ),
        (f"(CLAUDE_CODE_OAUTH_TOKEN='{OAUTH_TOKEN}')", "(CLAUDE_CODE_OAUTH_TOKEN='sk-ant-<redacted>')"),
        (f"line one\n{GATEWAY_KEY}\nline three", "line one\nsk-<redacted>\nline three"),
    ],
    ids=[
        "oauth-token",
        "anthropic-api-key",
        "gateway-key",
        "bearer-header",
        "json",
        "query-string",
        "two-secrets",
        "quoted",
        "own-line",
    ],
)
def test_tokens_and_keys_are_scrubbed_from_text(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nothing secret here",
        "sk-learn is a library",
        "sk-short-key",
        "sk-ant-oat01-short",
        "the task-0123456789abcdefghij is not a key",
        "risk-0123456789abcdefghijklmnop",
        "Incorrect API key provided: sk-Ab****WxYz.",
    ],
)
def test_text_without_secrets_is_left_alone(text):
    assert redact(text) == text


@pytest.mark.parametrize("secret", SECRETS, ids=["oauth-token", "anthropic-api-key", "gateway-key"])
def test_no_part_of_the_secret_survives(secret):
    redacted = redact(f"before {secret} after")
    assert secret not in redacted
    assert secret[len("sk-ant-oat01-") :][:16] not in redacted
    assert secret[-16:] not in redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # repr() of text that has the secret at the start of a line, as `%r` of a CLI's stderr logs it.
        (repr(f"error:\n{OAUTH_TOKEN}"), "'error:\\nsk-ant-<redacted>'"),
        (repr(f"env:\t{GATEWAY_KEY}"), "'env:\\tsk-<redacted>'"),
        # Percent-encoded, as in a logged URL or form body.
        (f"Authorization=Bearer%20{OAUTH_TOKEN}", "Authorization=Bearer%20sk-ant-<redacted>"),
    ],
    ids=["repr-newline-oauth-token", "repr-tab-gateway-key", "percent-encoded-oauth-token"],
)
def test_secrets_after_an_escape_sequence_are_scrubbed(text, expected):
    assert redact(text) == expected


class ListHandler(logging.Handler):
    """Keeps each formatted line, as a real handler would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged(request):
    logger = logging.getLogger(f"tests.redaction.{request.node.name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = ListHandler()
    logger.addHandler(handler)
    yield logger, handler.lines
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        ("starting claude with token %s", (OAUTH_TOKEN,), "starting claude with token sk-ant-<redacted>"),
        (f"starting claude with token {OAUTH_TOKEN}", (), "starting claude with token sk-ant-<redacted>"),
        ("key %s used for %s", (GATEWAY_KEY, "gpt-4"), "key sk-<redacted> used for gpt-4"),
        ("env %(env)s", ({"env": {"ANTHROPIC_API_KEY": ANTHROPIC_API_KEY}},), None),
        ("%d tokens, cost %.2f", (12, 0.5), "12 tokens, cost 0.50"),
    ],
    ids=["token-as-arg", "token-in-message", "key-as-arg", "token-in-dict-arg", "no-secret"],
)
def test_secrets_are_scrubbed_from_log_messages(logged, message, args, expected):
    logger, lines = logged
    logger.info(message, *args)
    (line,) = lines
    for secret in SECRETS:
        assert secret not in line
    if expected is not None:
        assert line == f"INFO {logger.name} {expected}"
    else:
        assert "sk-ant-<redacted>" in line


def test_secrets_in_a_repr_logged_with_percent_r_are_scrubbed(logged):
    logger, lines = logged
    logger.warning("claude stderr: %r", f"Invalid token:\n{OAUTH_TOKEN}\n".encode())
    (line,) = lines
    assert OAUTH_TOKEN not in line
    assert line.endswith("claude stderr: b'Invalid token:\\nsk-ant-<redacted>\\n'")


def test_secrets_are_scrubbed_from_exception_text(logged):
    logger, lines = logged
    try:
        try:
            raise ValueError(f"upstream refused {OAUTH_TOKEN}")
        except ValueError as inner:
            raise RuntimeError(f"run failed for key {GATEWAY_KEY}") from inner
    except RuntimeError:
        logger.exception("claude run failed")
    (line,) = lines
    assert line.startswith(f"ERROR {logger.name} claude run failed\nTraceback (most recent call last):")
    assert "ValueError: upstream refused sk-ant-<redacted>" in line
    assert "RuntimeError: run failed for key sk-<redacted>" in line
    for secret in SECRETS:
        assert secret not in line


def test_filter_keeps_every_record_and_leaves_clean_ones_untouched():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s tokens", (12,), None)
    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("%s tokens", (12,))
    assert record.getMessage() == "12 tokens"


def test_filter_rewrites_a_record_that_held_a_secret():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "token %s", (OAUTH_TOKEN,), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "token sk-ant-<redacted>"
