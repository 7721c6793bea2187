"""Tests of translate.py: chat requests to Claude turns, and Claude Code's messages back to OpenAI objects."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from openai.types.chat import ChatCompletion as OpenAIChatCompletion
from openai.types.chat import ChatCompletionChunk as OpenAIChatCompletionChunk

from claude_code_api.answer.events import (
    ClaudeUsage,
    TextDelta,
    ToolCallArguments,
    ToolCallRecord,
    ToolCallStarted,
    TurnFinished,
)
from claude_code_api.answer.images import image_block_from_data_url
from claude_code_api.answer.reader import ClaudeStreamReader, StopScanner
from claude_code_api.answer.request import TOOL_RESULTS_PROMPT, ClaudeTurn
from claude_code_api.answer.tools import ClientTool
from claude_code_api.apis.openai_chat.encode import ChunkFactory, chat_completion, finish_reason, openai_usage
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_chat.translate import translate_request
from claude_code_api.catalog import ModelChoice
from claude_code_api.claude.transcript import transcript_entries
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


# --- refused parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -0.5}, "frequency_penalty"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"store": True}, "store"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": False, "stream_options": {"include_usage": False}}, "stream_options"),
    ],
)
def test_refused_parameter_gives_unsupported_parameter_error_naming_it(fields, param):
    with pytest.raises(UnsupportedParameterError) as caught:
        translate(**fields)
    error = caught.value
    assert error.param == param
    assert error.status == 400
    assert error.code == "unsupported_parameter"
    assert error.message.startswith(f"Unsupported parameter '{param}': ")
    assert error.to_body()["error"]["param"] == param


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
def test_empty_content_is_refused_naming_the_message(messages, param):
    with pytest.raises(InvalidRequestError) as caught:
        translate(messages)
    assert caught.value.param == param
    assert "must not be empty" in caught.value.message


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
    # Claude Code's prompt cannot carry tool results: they are replayed, with the user's words after them.
    assert claude.history[2:] == (
        ClaudeTurn(
            "user",
            (
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "21C\nsunny"},
                text("Thanks!"),
            ),
        ),
    )
    assert claude.prompt == (text(TOOL_RESULTS_PROMPT),)


def test_conversation_ending_with_tool_results_replays_them_and_asks_to_continue():
    messages = [
        user("Weather in Paris?"),
        assistant(None, tool_calls=[call("call_1", "get_weather", '{"city": "Paris"}')]),
        tool_result("call_1", "18C"),
    ]
    claude = translate(messages, tools=[WEATHER_TOOL])
    assert claude.history == (
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
    assert claude.prompt == (text(TOOL_RESULTS_PROMPT),)


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


def test_transcript_entries_link_parent_uuids_and_carry_session_and_cwd():
    history = (
        ClaudeTurn("user", (text("What is 2+2?"),)),
        ClaudeTurn("assistant", (text("4"),)),
        ClaudeTurn("user", (text("Times 3?"), text("Please."))),
    )
    entries = transcript_entries(
        history,
        session_id="session-1",
        cwd="/tmp/run-1",
        model="claude-sonnet-4-5",
        timestamp="2025-01-02T03:04:05.000Z",
        uuids=iter(["aaaa-1111", "bbbb-2222", "cccc-3333"]),
    )
    common = {
        "sessionId": "session-1",
        "cwd": "/tmp/run-1",
        "timestamp": "2025-01-02T03:04:05.000Z",
        "isSidechain": False,
        "userType": "external",
    }
    assert entries == [
        {
            "type": "user",
            "message": {"role": "user", "content": [text("What is 2+2?")]},
            "uuid": "aaaa-1111",
            "parentUuid": None,
            **common,
        },
        {
            "type": "assistant",
            "message": {
                "id": "msg_bbbb2222",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [text("4")],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
            "uuid": "bbbb-2222",
            "parentUuid": "aaaa-1111",
            **common,
        },
        {
            "type": "user",
            "message": {"role": "user", "content": [text("Times 3?"), text("Please.")]},
            "uuid": "cccc-3333",
            "parentUuid": "bbbb-2222",
            **common,
        },
    ]
    # Each entry is one JSON line of the session file.
    assert [orjson.loads(orjson.dumps(entry)) for entry in entries] == entries


def test_transcript_of_empty_history_is_empty():
    assert transcript_entries((), session_id="s", cwd="/", model="m", timestamp="t", uuids=iter(())) == []


# --- reading Claude Code's messages -------------------------------------------------------------


def stream_event(event: dict[str, Any], parent_tool_use_id: str | None = None) -> StreamEvent:
    return StreamEvent(uuid="ev-1", session_id="s-1", event=event, parent_tool_use_id=parent_tool_use_id)


def message_start(message_id: str, model: str = "claude-sonnet-4-5-20250929", parent: str | None = None):
    event = {
        "type": "message_start",
        "message": {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": []},
    }
    return stream_event(event, parent)


def block_start(index: int, block: dict[str, Any], parent: str | None = None) -> StreamEvent:
    return stream_event({"type": "content_block_start", "index": index, "content_block": block}, parent)


def text_delta(value: str, index: int = 0, parent: str | None = None) -> StreamEvent:
    event = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": value}}
    return stream_event(event, parent)


def json_delta(piece: str, index: int) -> StreamEvent:
    event = {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": piece},
    }
    return stream_event(event)


def message_delta(stop_reason: str, parent: str | None = None) -> StreamEvent:
    event = {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 3}}
    return stream_event(event, parent)


def streamed_text(
    message_id: str, *pieces: str, stop_reason: str | None = "end_turn", parent: str | None = None
):
    """The stream events of one upstream message of text; without a stop reason, a broken stream."""
    events = [message_start(message_id, parent=parent), block_start(0, {"type": "text", "text": ""}, parent)]
    events += [text_delta(piece, parent=parent) for piece in pieces]
    if stop_reason is not None:
        events += [
            stream_event({"type": "content_block_stop", "index": 0}, parent),
            message_delta(stop_reason, parent),
        ]
        events.append(stream_event({"type": "message_stop"}, parent))
    return events


def claude_message(*blocks: Any, message_id: str | None = None, parent: str | None = None, stop_reason=None):
    return AssistantMessage(
        content=list(blocks),
        model="claude-sonnet-4-5-20250929",
        parent_tool_use_id=parent,
        message_id=message_id,
        stop_reason=stop_reason,
    )


def result_message(**fields: Any) -> ResultMessage:
    values: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 420,
        "duration_api_ms": 400,
        "is_error": False,
        "num_turns": 1,
        "session_id": "s-1",
    }
    return ResultMessage(**{**values, **fields})


def read_all(reader: ClaudeStreamReader, messages: list[Any]) -> list[Any]:
    events: list[Any] = []
    for message in messages:
        events.extend(reader.read(message))
    return events


def texts(events: list[Any]) -> list[TextDelta]:
    return [event for event in events if isinstance(event, TextDelta)]


def test_text_deltas_from_stream_events_come_out_in_order():
    reader = ClaudeStreamReader()
    events = read_all(reader, streamed_text("msg_1", "Hel", "lo, ", "world"))
    assert events == [TextDelta("Hel"), TextDelta("lo, "), TextDelta("world")]
    assert reader.text == "Hello, world"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "no block 1"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
        {"type": "ping"},
    ],
)
def test_stream_events_without_answer_text_give_no_events(event):
    reader = ClaudeStreamReader()
    read_all(reader, streamed_text("msg_1", stop_reason=None))
    assert reader.read(stream_event(event)) == []
    assert reader.text == ""


def test_thinking_and_claude_code_tool_blocks_give_no_text():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            message_start("msg_1"),
            block_start(0, {"type": "thinking", "thinking": ""}),
            stream_event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "hm"},
                }
            ),
            block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}),
            json_delta('{"file_path": "/etc/hosts"}', 1),
            block_start(2, {"type": "text", "text": ""}),
            text_delta("Answer", index=2),
        ],
    )
    assert events == [TextDelta("Answer")]


def test_complete_message_after_a_full_stream_adds_nothing():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "Hello, ", "world"),
            claude_message(TextBlock("Hello, world"), message_id="msg_1"),
        ],
    )
    assert events == [TextDelta("Hello, "), TextDelta("world")]
    assert reader.text == "Hello, world"


def test_after_a_broken_stream_the_complete_message_supplies_the_missing_rest():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "The answer ", "is", stop_reason=None),
            # The stream broke here; the CLI asked again without streaming.
            claude_message(
                TextBlock("The answer is 42, as computed."), message_id="msg_2", stop_reason="end_turn"
            ),
            result_message(stop_reason="end_turn"),
        ],
    )
    assert texts(events) == [TextDelta("The answer "), TextDelta("is"), TextDelta(" 42, as computed.")]
    assert reader.text == "The answer is 42, as computed."
    assert events[-1].stop_reason == "end_turn"


def test_after_a_broken_stream_a_streamed_retry_passes_on_only_what_is_new():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "The answer ", "is", stop_reason=None),
            *streamed_text("msg_2", "The ", "answer is", " 42."),
        ],
    )
    assert events == [TextDelta("The answer "), TextDelta("is"), TextDelta(" 42.")]
    assert reader.text == "The answer is 42."


def test_text_of_successive_upstream_messages_adds_up():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_1", "First part.", stop_reason="tool_use"),
            *streamed_text("msg_2", " Second part."),
        ],
    )
    assert events == [TextDelta("First part."), TextDelta(" Second part.")]
    assert reader.text == "First part. Second part."


def test_answer_without_stream_events_comes_whole_from_the_complete_message():
    reader = ClaudeStreamReader()
    events = reader.read(
        claude_message(
            ThinkingBlock(thinking="Let me think.", signature="sig"),
            TextBlock("Part one. "),
            ToolUseBlock(id="toolu_1", name="Read", input={}),
            TextBlock("Part two."),
            message_id="msg_1",
        )
    )
    assert "".join(event.text for event in texts(events)) == "Part one. Part two."
    assert events == texts(events)
    assert reader.text == "Part one. Part two."


def test_subagent_events_are_ignored():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            *streamed_text("msg_sub", "subagent text", stop_reason="max_tokens", parent="toolu_1"),
            claude_message(TextBlock("subagent whole answer"), message_id="msg_sub2", parent="toolu_1"),
            *streamed_text("msg_1", "Main ", "answer"),
            result_message(),
        ],
    )
    assert texts(events) == [TextDelta("Main "), TextDelta("answer")]
    assert reader.text == "Main answer"
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    assert finished.stop_reason == "end_turn"


def test_subagent_alone_sets_neither_model_nor_stop_reason():
    reader = ClaudeStreamReader()
    events = read_all(
        reader, [*streamed_text("msg_sub", "x", stop_reason="max_tokens", parent="toolu_1"), result_message()]
    )
    assert events == [TurnFinished(stop_reason=None, usage=ClaudeUsage(), cost_usd=None, model=None)]


def test_turn_finished_carries_usage_cost_and_model():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            SystemMessage(subtype="init", data={"model": "claude-sonnet-4-5-20250929", "session_id": "s-1"}),
            *streamed_text("msg_1", "Hi"),
            claude_message(TextBlock("Hi"), message_id="msg_1"),
            result_message(
                stop_reason="end_turn",
                total_cost_usd=0.0123,
                usage={
                    "input_tokens": 12,
                    "output_tokens": 5,
                    "cache_creation_input_tokens": 300,
                    "cache_read_input_tokens": 4000,
                },
                result="Hi",
            ),
        ],
    )
    assert events == [
        TextDelta("Hi"),
        TurnFinished(
            stop_reason="end_turn",
            usage=ClaudeUsage(
                input_tokens=12, output_tokens=5, cache_creation_tokens=300, cache_read_tokens=4000
            ),
            cost_usd=0.0123,
            model="claude-sonnet-4-5-20250929",
        ),
    ]


@pytest.mark.parametrize(
    ("messages", "model"),
    [
        ([SystemMessage(subtype="init", data={"model": "claude-opus-4-5"})], "claude-opus-4-5"),
        ([message_start("msg_1", model="claude-haiku-4-5")], "claude-haiku-4-5"),
        ([SystemMessage(subtype="status", data={"model": "claude-opus-4-5"})], None),
        ([], None),
    ],
)
def test_turn_finished_names_the_model_claude_code_reported(messages, model):
    reader = ClaudeStreamReader()
    events = read_all(reader, [*messages, result_message()])
    assert events[-1].model == model


@pytest.mark.parametrize(
    ("messages", "stop_reason"),
    [
        ([result_message(stop_reason="max_tokens")], "max_tokens"),
        ([*streamed_text("msg_1", "x", stop_reason="refusal"), result_message()], "refusal"),
        (
            [*streamed_text("msg_1", "x", stop_reason="end_turn"), result_message(stop_reason="max_tokens")],
            "max_tokens",
        ),
        ([result_message()], None),
    ],
)
def test_turn_finished_stop_reason_comes_from_the_result_else_from_the_stream(messages, stop_reason):
    reader = ClaudeStreamReader()
    assert read_all(reader, messages)[-1].stop_reason == stop_reason


def test_result_without_usage_counts_zero_tokens():
    finished = ClaudeStreamReader().read(result_message(usage=None, total_cost_usd=None))
    assert finished == [TurnFinished(stop_reason=None, usage=ClaudeUsage(), cost_usd=None, model=None)]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, ClaudeUsage(0, 0, 0, 0)),
        ({}, ClaudeUsage(0, 0, 0, 0)),
        ({"input_tokens": 3, "output_tokens": 4}, ClaudeUsage(3, 4, 0, 0)),
        (
            {
                "input_tokens": 3,
                "output_tokens": 4,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": 9,
                "server_tool_use": {"web_search_requests": 0},
            },
            ClaudeUsage(3, 4, 0, 9),
        ),
    ],
)
def test_claude_usage_reads_claude_token_counts(usage, expected):
    assert ClaudeUsage.from_claude(usage) == expected


def test_streamed_client_tool_call_becomes_tool_call_events():
    reader = ClaudeStreamReader()
    events = read_all(
        reader,
        [
            message_start("msg_1"),
            block_start(0, {"type": "text", "text": ""}),
            text_delta("Checking."),
            block_start(
                1, {"type": "tool_use", "id": "toolu_1", "name": "mcp__client__get_weather", "input": {}}
            ),
            json_delta('{"city": ', 1),
            json_delta('"Paris"}', 1),
            message_delta("tool_use"),
            result_message(stop_reason="end_turn"),
        ],
    )
    assert events[:-1] == [
        TextDelta("Checking."),
        ToolCallStarted(0, "toolu_1", "get_weather"),
        ToolCallArguments(0, '{"city": '),
        ToolCallArguments(0, '"Paris"}'),
    ]
    assert reader.tool_calls == [ToolCallRecord("toolu_1", "get_weather", '{"city": "Paris"}')]
    assert events[-1].stop_reason == "tool_use"


def test_unstreamed_client_tool_call_comes_whole():
    reader = ClaudeStreamReader()
    events = reader.read(
        claude_message(
            ToolUseBlock(id="toolu_9", name="mcp__client__get_weather", input={"city": "Rome"}),
            message_id="m",
        )
    )
    assert events == [ToolCallStarted(0, "toolu_9", "get_weather"), ToolCallArguments(0, '{"city":"Rome"}')]


def test_structured_answer_is_the_json_given_to_the_structured_output_tool():
    reader = ClaudeStreamReader(structured=True)
    events = read_all(
        reader,
        [
            message_start("msg_1"),
            block_start(0, {"type": "text", "text": ""}),
            text_delta("Here is the JSON:"),
            block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "StructuredOutput", "input": {}}),
            json_delta('{"name": ', 1),
            json_delta('"Paris"}', 1),
            message_delta("tool_use"),
            result_message(stop_reason="tool_use", structured_output={"name": "Paris"}),
        ],
    )
    assert texts(events) == [TextDelta('{"name": '), TextDelta('"Paris"}')]
    assert events[-1] == TurnFinished(
        stop_reason="end_turn",
        usage=ClaudeUsage(),
        cost_usd=None,
        model="claude-sonnet-4-5-20250929",
        structured_output={"name": "Paris"},
    )


# --- stop sequences -----------------------------------------------------------------------------


def scan(stops: tuple[str, ...], deltas: list[str]) -> tuple[list[str], str, bool]:
    scanner = StopScanner(stops)
    released = [scanner.feed(delta) for delta in deltas]
    return released, scanner.flush(), scanner.stopped


@pytest.mark.parametrize(
    ("stops", "deltas", "answer", "stopped"),
    [
        (("END",), ["abcENDxyz"], "abc", True),
        (("END",), ["abcE", "NDxyz"], "abc", True),
        (("END",), ["abcEN", "Dxyz"], "abc", True),
        (("END",), ["ab E", "N", "D tail"], "ab ", True),
        (("END",), ["abc", "END"], "abc", True),
        (("STOP", "\n\n"), ["one\n", "\ntwo STOP"], "one", True),
        (("STOP", "\n\n"), ["one ST", "OP\n\ntwo"], "one ", True),
        (("later", "soon"), ["x soon y later"], "x ", True),
        (("later", "soon"), ["x lat", "er soon"], "x ", True),
        (("Hi",), ["Hi there"], "", True),
        (("Hello",), ["He", "llo world"], "", True),
        (("Hello",), ["", "Hello"], "", True),
        (("END",), ["abcEN"], "abcEN", False),
        (("END",), ["abE", "Xyz"], "abEXyz", False),
        (("END",), ["no stop here"], "no stop here", False),
        (("\n",), ["line one", " still", "\nline two"], "line one still", True),
        ((), ["a", "b", "END"], "abEND", False),
    ],
)
def test_stop_scanner_cuts_at_the_first_stop_across_delta_boundaries(stops, deltas, answer, stopped):
    released, rest, was_stopped = scan(stops, deltas)
    assert "".join(released) + rest == answer
    assert was_stopped is stopped
    for index in range(len(released)):
        so_far = "".join(released[: index + 1])
        assert answer.startswith(so_far)
        assert not any(stop in so_far for stop in stops)


def test_stop_scanner_holds_back_only_what_could_start_a_stop():
    scanner = StopScanner(("END", "<|stop|>"))
    assert scanner.feed("abcdefghij") == "abc"
    assert scanner.feed("k") == "d"
    assert scanner.flush() == "efghijk"
    assert scanner.flush() == ""


def test_stop_scanner_without_stops_releases_each_delta_at_once():
    scanner = StopScanner(())
    assert [scanner.feed(delta) for delta in ["He", "llo", ""]] == ["He", "llo", ""]
    assert scanner.flush() == ""
    assert scanner.stopped is False


def test_stop_scanner_releases_nothing_after_the_stop():
    scanner = StopScanner(("END",))
    assert scanner.feed("done END more") == "done "
    assert scanner.feed("even more text") == ""
    assert scanner.flush() == ""
    assert scanner.stopped is True


# --- OpenAI objects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop_reason", "by_sequence", "expected"),
    [
        ("end_turn", False, "stop"),
        ("stop_sequence", False, "stop"),
        ("pause_turn", False, "stop"),
        ("max_tokens", False, "length"),
        ("model_context_window_exceeded", False, "length"),
        ("tool_use", False, "tool_calls"),
        ("refusal", False, "content_filter"),
        (None, False, "stop"),
        ("some_future_reason", False, "stop"),
        ("max_tokens", True, "stop"),
        ("refusal", True, "stop"),
    ],
)
def test_finish_reason_maps_claude_stop_reasons(stop_reason, by_sequence, expected):
    assert finish_reason(stop_reason, stopped_by_sequence=by_sequence) == expected


@pytest.mark.parametrize(
    ("usage", "prompt", "completion", "cached"),
    [
        (ClaudeUsage(), 0, 0, 0),
        (ClaudeUsage(input_tokens=10, output_tokens=5), 10, 5, 0),
        (ClaudeUsage(input_tokens=10, output_tokens=5, cache_creation_tokens=100), 110, 5, 0),
        (ClaudeUsage(input_tokens=10, output_tokens=5, cache_read_tokens=1000), 1010, 5, 1000),
        (ClaudeUsage(10, 5, cache_creation_tokens=100, cache_read_tokens=1000), 1110, 5, 1000),
    ],
)
def test_openai_usage_counts_cache_tokens_as_prompt_tokens(usage, prompt, completion, cached):
    assert openai_usage(usage) == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_chat_completion_has_openai_shape():
    completion = chat_completion(
        completion_id="chatcmpl-abc",
        created=1_700_000_123,
        model="gpt-4",
        text="Hello!",
        finish="length",
        usage=ClaudeUsage(input_tokens=3, output_tokens=2, cache_read_tokens=5),
    )
    assert completion == {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_123,
        "model": "gpt-4",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 2,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": None,
    }
    parsed = OpenAIChatCompletion.model_validate(orjson.loads(orjson.dumps(completion)))
    assert parsed.choices[0].message.content == "Hello!"
    assert parsed.usage is not None
    assert parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 5


@pytest.mark.parametrize(
    ("text_", "tool_calls", "message"),
    [
        ("", None, {"role": "assistant", "content": "", "refusal": None}),
        (
            "",
            [ToolCallRecord("toolu_1", "get_weather", '{"city":"Rome"}'), ToolCallRecord("toolu_2", "ping")],
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                    {"id": "toolu_2", "type": "function", "function": {"name": "ping", "arguments": "{}"}},
                ],
            },
        ),
        (
            "Checking.",
            [ToolCallRecord("toolu_1", "ping", "{}")],
            {
                "role": "assistant",
                "content": "Checking.",
                "refusal": None,
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}
                ],
            },
        ),
    ],
)
def test_chat_completion_message_carries_tool_calls(text_, tool_calls, message):
    completion = chat_completion(
        completion_id="c",
        created=1,
        model="m",
        text=text_,
        finish="tool_calls",
        usage=ClaudeUsage(),
        tool_calls=tool_calls,
    )
    assert completion["choices"][0]["message"] == message
    OpenAIChatCompletion.model_validate(completion)


CHUNK_HEAD = {
    "id": "chatcmpl-xyz",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "gpt-4",
}


def choice(delta: dict[str, Any], finish: str | None) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]


@pytest.mark.parametrize(
    ("build", "choices"),
    [
        (lambda f: f.role(), choice({"role": "assistant", "content": "", "refusal": None}, None)),
        (lambda f: f.content("Hel"), choice({"content": "Hel"}, None)),
        (lambda f: f.content(""), choice({"content": ""}, None)),
        (lambda f: f.finish("stop"), choice({}, "stop")),
        (lambda f: f.finish("length"), choice({}, "length")),
        (
            lambda f: f.tool_call_start(ToolCallStarted(1, "toolu_1", "get_weather")),
            choice(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
                None,
            ),
        ),
        (
            lambda f: f.tool_call_arguments(ToolCallArguments(1, '{"city"')),
            choice({"tool_calls": [{"index": 1, "function": {"arguments": '{"city"'}}]}, None),
        ),
    ],
)
@pytest.mark.parametrize("include_usage", [False, True])
def test_chunk_factory_builds_openai_chunks(build, choices, include_usage):
    factory = ChunkFactory("chatcmpl-xyz", 1_700_000_000, "gpt-4", include_usage=include_usage)
    expected: dict[str, Any] = {**CHUNK_HEAD, "choices": choices, "system_fingerprint": None}
    if include_usage:
        expected["usage"] = None
    chunk = build(factory)
    assert chunk == expected
    OpenAIChatCompletionChunk.model_validate(chunk)


def test_usage_chunk_has_no_choices_and_the_usage():
    factory = ChunkFactory("chatcmpl-xyz", 1_700_000_000, "gpt-4", include_usage=True)
    chunk = factory.usage(
        ClaudeUsage(input_tokens=7, output_tokens=3, cache_creation_tokens=1, cache_read_tokens=2)
    )
    assert chunk == {
        **CHUNK_HEAD,
        "choices": [],
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert OpenAIChatCompletionChunk.model_validate(chunk).usage.total_tokens == 13
