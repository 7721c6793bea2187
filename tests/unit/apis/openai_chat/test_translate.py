"""Tests of apis/openai_chat/translate.py: chat requests to Claude requests."""

from __future__ import annotations

from typing import Any

import pytest

from claude_code_api.answer.images import image_block_from_data_url
from claude_code_api.answer.request import ClaudeTurn
from claude_code_api.answer.tools import ClientTool
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_chat.translate import translate_request
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError

SONNET = ModelChoice(requested="gpt-4-turbo", claude_model="sonnet")


PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


PNG_DATA_URL = f"data:image/png;base64,{PNG_BASE64}"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any, **fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **fields}


def tool_result(call_id: str, content: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def chat_request(messages: list[dict[str, Any]] | None = None, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "gpt-4-turbo", "messages": messages or [user("Hello")], **fields}
    )


def translate(messages: list[dict[str, Any]] | None = None, **fields: Any):
    return translate_request(chat_request(messages, **fields), SONNET)


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [user("Hi"), assistant(None, function_call={"name": "f", "arguments": "{}"}), user("Go")],
            "messages[1]",
        ),
        ([user("Hi"), assistant("Hello", audio={"id": "audio_1"}), user("Go")], "messages[1]"),
        (
            [user([text("Hi"), {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}])],
            "messages[0].content[1]",
        ),
        ([user([{"type": "file", "file": {"file_id": "file-1"}}])], "messages[0].content[0]"),
        ([user([text("What is this?"), image("https://example.com/cat.png")])], "messages[0].content[1]"),
        (
            [user("Hi"), assistant("Yes"), user([image("http://example.com/cat.png")])],
            "messages[2].content[0]",
        ),
    ],
)
def test_refused_message_feature_gives_unsupported_parameter_error_naming_its_place(messages, param):
    with pytest.raises(UnsupportedParameterError) as caught:
        translate(messages)
    assert caught.value.param == param
    assert caught.value.message.startswith(f"Unsupported parameter '{param}': ")


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"logprobs": False},
        {"logit_bias": {}},
        {"modalities": ["text"]},
        {"presence_penalty": 0},
        {"frequency_penalty": 0.0},
        {"store": False},
        {"tools": []},
        {"tool_choice": "none"},
        {"tool_choice": "auto"},
        {"response_format": {"type": "text"}},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"temperature": 0.2, "top_p": 0.9, "seed": 7, "user": "u-1", "metadata": {"team": "a"}},
        {"parallel_tool_calls": False, "service_tier": "auto", "verbosity": "low"},
    ],
)
def test_parameters_with_neutral_values_are_accepted(fields):
    claude = translate(**fields)
    assert claude.prompt == (text("Hello"),)
    assert claude.client_tools == ()
    assert claude.output_schema is None


# --- messages to Claude turns -------------------------------------------------------------------


def test_system_and_developer_messages_join_into_the_system_prompt_in_order():
    claude = translate(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [text("Answer in French."), text("No lists.")]},
            user("Hello"),
            {"role": "system", "content": "Sign with 'C'."},
        ]
    )
    assert claude.system_prompt == "You are terse.\n\nAnswer in French.\nNo lists.\n\nSign with 'C'."
    assert claude.history == ()
    assert claude.prompt == (text("Hello"),)


@pytest.mark.parametrize(
    "messages",
    [
        [user("Hello")],
        [{"role": "system", "content": ""}, user("Hello")],
        [{"role": "developer", "content": []}, user("Hello")],
    ],
)
def test_system_prompt_is_none_without_system_text(messages):
    assert translate(messages).system_prompt is None


def test_multi_turn_history_becomes_claude_turns_not_flattened_text():
    claude = translate(
        [
            {"role": "system", "content": "Be brief."},
            user("What is 2+2?"),
            assistant("4"),
            user("And times 3?"),
            assistant([text("12"), {"type": "refusal", "refusal": "."}]),
            user([text("Thanks. Now this:"), image(PNG_DATA_URL)]),
        ]
    )
    assert claude.model == "sonnet"
    assert claude.system_prompt == "Be brief."
    assert claude.history == (
        ClaudeTurn("user", (text("What is 2+2?"),)),
        ClaudeTurn("assistant", (text("4"),)),
        ClaudeTurn("user", (text("And times 3?"),)),
        ClaudeTurn("assistant", (text("12."),)),
    )
    assert claude.prompt == (
        text("Thanks. Now this:"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
    )


def test_consecutive_user_messages_merge_into_one_turn():
    claude = translate([user("First."), {"role": "system", "content": "S"}, user([text("Second.")])])
    assert claude.history == ()
    assert claude.prompt == (text("First."), text("Second."))


def test_consecutive_assistant_messages_merge_into_one_turn():
    claude = translate([user("Hi"), assistant("Hello."), assistant("How can I help?"), user("Bye")])
    assert claude.history == (
        ClaudeTurn("user", (text("Hi"),)),
        ClaudeTurn("assistant", (text("Hello."), text("How can I help?"))),
    )


@pytest.mark.parametrize(
    ("content", "prompt"),
    [
        ("Hello there", (text("Hello there"),)),
        ([text("Hello there")], (text("Hello there"),)),
        ([text("One"), text("Two")], (text("One"), text("Two"))),
        ("  keeps its spaces\n", (text("  keeps its spaces\n"),)),
    ],
)
def test_string_and_text_part_content_become_text_blocks(content, prompt):
    assert translate([user(content)]).prompt == prompt


def test_assistant_refusal_without_content_becomes_its_text():
    claude = translate([user("Hi"), assistant(None, refusal="I can't help with that."), user("Ok")])
    assert claude.history[1] == ClaudeTurn("assistant", (text("I can't help with that."),))


@pytest.mark.parametrize(
    "messages",
    [
        [user("Hi"), assistant("Hello")],
        [user("Hi"), assistant("Hello"), {"role": "system", "content": "late system"}],
    ],
)
def test_last_message_must_come_from_the_user(messages):
    with pytest.raises(InvalidRequestError) as caught:
        translate(messages)
    assert caught.value.param == "messages"
    assert caught.value.status == 400
    assert "last message" in caught.value.message


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "Only instructions."}],
        [{"role": "developer", "content": "Only instructions."}, {"role": "system", "content": "More."}],
    ],
)
def test_request_without_user_message_is_refused(messages):
    with pytest.raises(InvalidRequestError) as caught:
        translate(messages)
    assert caught.value.param == "messages"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([user("")], "messages[0].content"),
        ([user("   \n\t")], "messages[0].content"),
        ([user([])], "messages[0].content"),
        ([user([text("")])], "messages[0].content"),
        ([user([text("fine"), text(" ")])], "messages[0].content"),
        ([user("Hi"), assistant(""), user("Again")], "messages[1].content"),
        ([user("Hi"), assistant(None), user("Again")], "messages[1].content"),
        ([user("Hi"), assistant([]), user("Again")], "messages[1].content"),
        ([{"role": "system", "content": "S"}, user("Hi"), assistant("A"), user("")], "messages[3].content"),
    ],
)
def test_empty_content_is_accepted_and_carried_without_empty_text(messages, param):
    request = translate(messages)
    turns = (*request.history, ClaudeTurn("user", request.prompt))
    for turn in turns:
        assert turn.content, param
        for block in turn.content:
            assert block["type"] != "text" or block["text"].strip(), param


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),
    ],
)
def test_max_completion_tokens_wins_over_max_tokens(fields, expected):
    assert translate(**fields).max_output_tokens == expected


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        (None, ()),
        ("END", ("END",)),
        ("", ()),
        (["END", "\n\n"], ("END", "\n\n")),
        (["", "STOP", ""], ("STOP",)),
        ([], ()),
    ],
)
def test_stop_becomes_non_empty_stop_sequences(stop, expected):
    assert translate(stop=stop).stop_sequences == expected


@pytest.mark.parametrize(
    ("reasoning_effort", "effort"),
    [
        (None, None),
        ("none", "low"),
        ("minimal", "low"),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("xhigh", "xhigh"),
    ],
)
def test_reasoning_effort_maps_to_claude_effort(reasoning_effort, effort):
    assert translate(reasoning_effort=reasoning_effort).effort == effort


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "media_type", "data"),
    [
        (PNG_DATA_URL, "image/png", PNG_BASE64),
        ("data:image/jpeg;base64,/9j/4AAQSkZJRg==", "image/jpeg", "/9j/4AAQSkZJRg=="),
        ("data:image/JPEG;base64,/9j/4AAQSkZJRg==", "image/jpeg", "/9j/4AAQSkZJRg=="),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "image/gif", "R0lGODlhAQABAAAAACw="),
        ("data:image/webp;base64,UklGRhoAAABXRUJQ", "image/webp", "UklGRhoAAABXRUJQ"),
        ("data:image/png;name=cat.png;base64,AAAA", "image/png", "AAAA"),
    ],
)
def test_data_url_image_becomes_base64_image_block(url, media_type, data):
    block = image_block_from_data_url(url, "messages[0].content[0]")
    assert block == {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


@pytest.mark.parametrize(
    "url",
    [
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "data:image/tiff;base64,AAAA",
        "data:text/plain;base64,aGVsbG8=",
        "data:application/pdf;base64,JVBERi0=",
    ],
)
def test_image_of_unsupported_type_is_refused(url):
    with pytest.raises(InvalidRequestError) as caught:
        translate([user([text("What is this?"), image(url)])])
    assert caught.value.param == "messages[0].content[1]"
    assert "not supported" in caught.value.message
    assert not isinstance(caught.value, UnsupportedParameterError)


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,not base64!",
        "data:image/png;base64,AAA",
        "data:image/png;base64,AA==AA==",
        "data:image/png;base64,",
        "data:image/png,iVBORw0KGgo=",
        "data:image/png;base64",
        "data:,AAAA",
    ],
)
def test_image_with_bad_base64_is_refused(url):
    with pytest.raises(InvalidRequestError) as caught:
        translate([user([image(url)])])
    assert caught.value.param == "messages[0].content[0]"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "url",
    ["https://example.com/cat.png", "http://example.com/cat.png", "file:///etc/passwd", "ftp://x/y.png"],
)
def test_image_url_that_is_not_a_data_url_is_refused_as_unsupported(url):
    with pytest.raises(UnsupportedParameterError) as caught:
        image_block_from_data_url(url, "messages[2].content[1]")
    assert caught.value.param == "messages[2].content[1]"
    assert "data: URLs" in caught.value.message


# --- client tools and structured output ---------------------------------------------------------


def test_client_functions_become_client_tools():
    bare = {"type": "function", "function": {"name": "ping"}}
    claude = translate(tools=[WEATHER_TOOL, bare])
    assert claude.client_tools == (
        ClientTool(
            name="get_weather",
            description="Current weather of a city.",
            input_schema=WEATHER_TOOL["function"]["parameters"],
        ),
        ClientTool(name="ping", description="ping", input_schema={"type": "object", "properties": {}}),
    )
    assert [tool.claude_name for tool in claude.client_tools] == [
        "mcp__client__get_weather",
        "mcp__client__ping",
    ]
    assert claude.system_prompt is None


def test_tool_choice_none_offers_no_tools():
    assert translate(tools=[WEATHER_TOOL], tool_choice="none").client_tools == ()


def test_duplicate_tool_names_are_refused():
    with pytest.raises(InvalidRequestError) as caught:
        translate(tools=[WEATHER_TOOL, WEATHER_TOOL])
    assert caught.value.param == "tools"


@pytest.mark.parametrize(
    ("fields", "instruction"),
    [
        ({"tool_choice": "auto"}, None),
        ({"tool_choice": "required"}, "You must answer by calling one or more of the available tools."),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            "You must answer by calling the tool mcp__client__get_weather.",
        ),
        ({"parallel_tool_calls": False}, "Call at most one tool in your answer."),
        ({"parallel_tool_calls": True}, None),
    ],
)
def test_tool_choice_becomes_a_system_instruction(fields, instruction):
    claude = translate(
        [{"role": "system", "content": "Be brief."}, user("Weather in Paris?")],
        tools=[WEATHER_TOOL],
        **fields,
    )
    assert claude.system_prompt == "\n\n".join(part for part in ("Be brief.", instruction) if part)


def test_tool_choice_naming_an_unknown_function_is_refused():
    with pytest.raises(InvalidRequestError) as caught:
        translate(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert caught.value.param == "tool_choice"
    assert "get_time" in caught.value.message


@pytest.mark.parametrize(
    ("response_format", "schema"),
    [
        ({"type": "json_object"}, {"type": "object"}),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": {"type": "object", "required": ["name"]}},
            },
            {"type": "object", "required": ["name"]},
        ),
        ({"type": "json_schema", "json_schema": {"name": "anything"}}, {"type": "object"}),
        ({"type": "text"}, None),
    ],
)
def test_response_format_becomes_the_output_schema(response_format, schema):
    assert translate(response_format=response_format).output_schema == schema


def test_assistant_tool_calls_become_tool_use_blocks_and_tool_messages_tool_results():
    claude = translate(
        [
            user("Weather in Paris and Rome?"),
            assistant(
                "Let me look.",
                tool_calls=[
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "get_weather", ""),
                ],
            ),
            tool_result("call_1", "18C"),
            tool_result("call_2", [text("21C"), text("sunny")]),
            user("Thanks!"),
        ],
        tools=[WEATHER_TOOL],
    )
    assert claude.history[:2] == (
        ClaudeTurn("user", (text("Weather in Paris and Rome?"),)),
        ClaudeTurn(
            "assistant",
            (
                text("Let me look."),
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "mcp__client__get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "mcp__client__get_weather", "input": {}},
            ),
        ),
    )
    # Tool results and the user's words after them make one user turn: the prompt.
    assert (*claude.history, ClaudeTurn("user", claude.prompt))[2:] == (
        ClaudeTurn(
            "user",
            (
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "21C\nsunny"},
                text("Thanks!"),
            ),
        ),
    )


def test_conversation_ending_with_tool_results_replays_them_and_asks_to_continue():
    messages = [
        user("Weather in Paris?"),
        assistant(None, tool_calls=[call("call_1", "get_weather", '{"city": "Paris"}')]),
        tool_result("call_1", "18C"),
    ]
    claude = translate(messages, tools=[WEATHER_TOOL])
    assert (*claude.history, ClaudeTurn("user", claude.prompt)) == (
        ClaudeTurn("user", (text("Weather in Paris?"),)),
        ClaudeTurn(
            "assistant",
            (
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "mcp__client__get_weather",
                    "input": {"city": "Paris"},
                },
            ),
        ),
        ClaudeTurn("user", ({"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},)),
    )


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"city"', "42"])
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments):
    messages = [
        user("Hi"),
        assistant(None, tool_calls=[call("c1", "get_weather", arguments)]),
        tool_result("c1", "x"),
    ]
    with pytest.raises(InvalidRequestError) as caught:
        translate(messages, tools=[WEATHER_TOOL])
    assert caught.value.param == "messages[1].tool_calls"


# --- transcript ---------------------------------------------------------------------------------
