"""Tests of routes/deps.py's pure helpers: a chat request body validated strictly, each problem a 400.

These parse with the wire shape alone (`parse_wire_request`), as the field policy leaves the fields it
maps to it; tests/unit/answer/test_fields.py covers the policy in front of it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from claude_code_api.apis.openai_chat.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    ImagePart,
    SystemMessage,
    TextPart,
    UserMessage,
)
from claude_code_api.errors import InvalidRequestError
from claude_code_api.routes.deps import parse_wire_request, validation_error

HELLO = [{"role": "user", "content": "Hello"}]


def parse_chat_request(raw: bytes) -> ChatCompletionRequest:
    return parse_wire_request(raw, ChatCompletionRequest)


def body(**fields: Any) -> bytes:
    return orjson.dumps({"model": "gpt-4", "messages": HELLO, **fields})


def case_id(value: Any) -> str | None:
    """A short test id: a body without the model and messages every case shares."""
    if not isinstance(value, bytes):
        return None
    return value.decode(errors="replace").replace(body().decode()[:-1] + ",", "{...,")


def refusal(raw: bytes) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse_chat_request(raw)
    error = caught.value
    assert type(error) is InvalidRequestError
    assert error.status == 400
    assert error.code == "invalid_request"
    return error


def test_valid_body_becomes_a_typed_request():
    request = parse_chat_request(
        orjson.dumps(
            {
                "model": "gpt-4",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Hi"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        ],
                    },
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "Bye"},
                ],
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 100,
                "temperature": 1,
                "stop": ["END"],
            }
        )
    )
    assert request.model == "gpt-4"
    assert [type(message) for message in request.messages] == [
        SystemMessage,
        UserMessage,
        AssistantMessage,
        UserMessage,
    ]
    first_user = request.messages[1]
    assert isinstance(first_user, UserMessage)
    assert isinstance(first_user.content, list)
    assert [type(part) for part in first_user.content] == [TextPart, ImagePart]
    assert request.stream is True
    assert request.stream_options is not None
    assert request.stream_options.include_usage is True
    assert request.max_tokens == 100
    assert request.temperature == 1.0
    assert request.stop == ["END"]


@pytest.mark.parametrize("raw", [b"", b" ", b"\n\t  \r\n"], ids=case_id)
def test_empty_body_is_refused(raw):
    error = refusal(raw)
    assert error.message == "The request body is empty; send a JSON object."
    assert error.param is None


@pytest.mark.parametrize(
    "raw", [b"{", b'{"model": "gpt-4",}', b"not json", b"\xff\xfe", b'{"model": gpt-4}'], ids=case_id
)
def test_malformed_json_is_refused(raw):
    error = refusal(raw)
    assert error.message.startswith("We could not parse the JSON body of your request: ")
    assert error.param is None


@pytest.mark.parametrize("raw", [b"[]", b'"hello"', b"42", b"null", b"true"], ids=case_id)
def test_body_that_is_not_an_object_is_refused(raw):
    error = refusal(raw)
    assert error.message == "The request body must be a JSON object."
    assert error.param is None


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{}", "model"),
        (orjson.dumps({"messages": HELLO}), "model"),
        (orjson.dumps({"model": "gpt-4"}), "messages"),
        (orjson.dumps({"model": "gpt-4", "messages": [{"role": "user"}]}), "messages[0].content"),
        (
            orjson.dumps({"model": "gpt-4", "messages": [{"role": "tool", "content": "42"}]}),
            "messages[0].tool_call_id",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
            "messages[0].content[0].text",
        ),
    ],
    ids=case_id,
)
def test_missing_parameter_is_named(raw, param):
    error = refusal(raw)
    assert error.param == param
    if error.message.startswith("Missing"):
        assert error.message == f"Missing required parameter: '{param}'."


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (body(foo=1), "foo"),
        (body(messages=[{"role": "user", "content": "Hi", "extra": True}]), "messages[0].extra"),
        (body(stream_options={"include_usage": True, "chunk_size": 3}), "stream_options.chunk_size"),
    ],
    ids=case_id,
)
def test_unknown_argument_is_named(raw, param):
    error = refusal(raw)
    assert error.message == f"Unrecognized request argument supplied: {param}"
    assert error.param == param


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (body(model=5), "model"),
        (body(messages=[]), "messages"),
        (body(messages="Hello"), "messages"),
        (body(max_tokens="5"), "max_tokens"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_tokens=1.5), "max_tokens"),
        (body(max_completion_tokens=-1), "max_completion_tokens"),
        (body(temperature=3), "temperature"),
        (body(temperature="0.5"), "temperature"),
        (body(top_p=1.5), "top_p"),
        (body(n=0), "n"),
        (body(stream="true"), "stream"),
        (body(stream=1), "stream"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (body(stop=5), "stop"),
        (body(presence_penalty=3), "presence_penalty"),
        (body(logit_bias={"50256": "high"}), "logit_bias.50256"),
        (body(metadata={"team": 1}), "metadata.team"),
        (body(seed="7"), "seed"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(response_format={"type": "xml"}), "response_format"),
        (body(reasoning_effort="maximum"), "reasoning_effort"),
        (body(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (body(messages=[{"role": "wizard", "content": "Hi"}]), "messages[0]"),
        (body(messages=[{"content": "Hi"}]), "messages[0]"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": "Hi", "name": 1}]), "messages[0].name"),
        (body(messages=[HELLO[0], {"role": "assistant", "content": 1}, HELLO[0]]), "messages[1].content"),
        (body(tools=[{"type": "function", "function": {"name": "bad name!"}}]), "tools[0].function.name"),
        (
            body(messages=[{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]),
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
    ids=case_id,
)
def test_invalid_value_is_refused_naming_the_parameter(raw, param):
    error = refusal(raw)
    assert error.param == param
    assert error.message.startswith(
        (f"Invalid value for '{param}': ", f"Missing required parameter: '{param}'")
    )
    assert error.to_body()["error"]["param"] == param


@pytest.mark.parametrize(
    "raw",
    [
        body(temperature=1),
        body(temperature=0.7, top_p=1),
        body(stop="END"),
        body(stop=None),
        body(max_tokens=None),
        body(n=1, seed=-3),
        body(messages=[{"role": "developer", "content": [{"type": "text", "text": "Rules."}]}, HELLO[0]]),
    ],
    ids=case_id,
)
def test_valid_values_are_accepted(raw):
    assert isinstance(parse_chat_request(raw), ChatCompletionRequest)


def pydantic_errors(data: Any) -> list[Any]:
    with pytest.raises(ValidationError) as caught:
        ChatCompletionRequest.model_validate(data, strict=True)
    return caught.value.errors()


def test_validation_error_reports_only_the_first_problem():
    errors = pydantic_errors({"model": 5, "messages": []})
    assert len(errors) == 2
    assert validation_error(errors).param == "model"


def test_validation_error_leaves_out_the_body_prefix_of_fastapi_locations():
    error = validation_error([{"type": "missing", "loc": ("body", "messages"), "msg": "Field required"}])
    assert error.param == "messages"
    assert error.message == "Missing required parameter: 'messages'."


def test_validation_error_quotes_the_json_parser():
    error = validation_error(
        [{"type": "json_invalid", "loc": (), "msg": "Invalid JSON", "ctx": {"error": "EOF while parsing"}}]
    )
    assert error.message == "We could not parse the JSON body of your request: EOF while parsing."
    assert error.param is None


@pytest.mark.parametrize("name", ["foo[0]", "a.b", "str", "tool"])
def test_unknown_argument_with_an_odd_name_is_still_named(name):
    error = refusal(body(**{name: 1}))
    assert error.message == f"Unrecognized request argument supplied: {name}"
    assert error.param == name


@pytest.mark.parametrize(
    ("raw", "param", "detail"),
    [
        # A request field whose name is also a message role.
        (body(user=123), "user", "valid string"),
        # Inside a tagged union, the tag is not part of the parameter's name.
        (body(response_format={"type": "text", "strict": True}), "response_format.strict", "Unrecognized"),
        (
            body(response_format={"type": "json_schema", "json_schema": {"name": "has spaces"}}),
            "response_format.json_schema.name",
            "pattern",
        ),
        # A list sent where a string or a list is allowed: the list's own problem is the one to report.
        (body(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]),
            "messages[0].content[0].image_url.url",
            "valid string",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
            "messages[0].content[0]",
            "video",
        ),
        (
            body(tool_choice={"type": "function", "function": {}}),
            "tool_choice.function.name",
            "Missing",
        ),
    ],
    ids=case_id,
)
def test_problem_inside_a_union_is_named_where_it_is(raw, param, detail):
    error = refusal(raw)
    assert error.param == param
    assert detail in error.message
