"""Tests of security/apikeys.py: key format, generation, hashing and checks."""

from __future__ import annotations

import hashlib
import re

import pytest

from claude_code_api.security.apikeys import (
    generate_api_key,
    generate_key_id,
    hash_api_key,
    key_prefix,
    looks_like_api_key,
    verify_api_key,
)

A_KEY = "sk-" + "AbCdEfGh" + "x" * 40


def test_generated_key_is_sk_and_48_url_safe_characters():
    key = generate_api_key()
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{48}", key)
    assert looks_like_api_key(key)


def test_generated_keys_differ():
    assert len({generate_api_key() for _ in range(1_000)}) == 1_000


def test_key_id_is_key_and_12_lowercase_alphanumerics():
    assert re.fullmatch(r"key_[a-z0-9]{12}", generate_key_id())
    assert len({generate_key_id() for _ in range(1_000)}) == 1_000


def test_hash_is_hex_sha256_of_the_key():
    assert hash_api_key(A_KEY) == hashlib.sha256(A_KEY.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_api_key(A_KEY))


def test_hash_is_stable_and_differs_between_keys():
    other = generate_api_key()
    assert hash_api_key(other) == hash_api_key(other)
    assert hash_api_key(other) != hash_api_key(A_KEY)


@pytest.mark.parametrize(
    ("candidate", "matches"),
    [
        (A_KEY, True),
        (A_KEY[:-1] + "y", False),
        (A_KEY + "x", False),
        ("", False),
    ],
)
def test_verify_api_key(candidate, matches):
    assert verify_api_key(candidate, hash_api_key(A_KEY)) is matches


def test_prefix_shows_sk_and_eight_characters_then_an_ellipsis():
    assert key_prefix(A_KEY) == "sk-AbCdEfGh…"


def test_prefix_reveals_no_more_than_eight_random_characters():
    key = generate_api_key()
    assert key_prefix(key) == key[:11] + "…"
    assert key[11:] not in key_prefix(key)


def test_prefix_refuses_what_is_not_a_key():
    with pytest.raises(ValueError, match="not an API key"):
        key_prefix("sk-short")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (A_KEY, True),
        ("sk-" + "_-" * 24, True),
        ("sk-" + "a" * 47, False),
        ("sk-" + "a" * 49, False),
        ("SK-" + "a" * 48, False),
        ("pk-" + "a" * 48, False),
        ("sk-" + "a" * 47 + "=", False),
        ("sk-" + "a" * 47 + "/", False),
        ("sk-" + "a" * 47 + "\n", False),
        (" " + A_KEY, False),
        ("sk-ant-oat01-" + "a" * 80, False),
        ("key_abcdefabcdef", False),
        ("", False),
    ],
)
def test_looks_like_api_key(value, expected):
    assert looks_like_api_key(value) is expected
