"""The pool of live Claude processes: reused across conversations with nothing of the last one left,
continued, rewound, waiting inside client function calls, never shared, never across tokens.

Which process answered a request shows in the mock's log: Claude Code sends its working directory (a
folder of its own per process) in the environment text of every upstream request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.factories import make_oauth_token
from tests.integration.gateway_harness import GatewayServer, claude_processes, make_settings
from tests.integration.mock_anthropic import ErrorReply, MockAnthropic, RecordedRequest, Reply, ToolUse

# What a reused process must never send: another conversation's words, or the trace of a reset.
RESIDUE = ("<local-command", "/clear", "No response requested", "Continue: the tool results")
_WORKING_DIRECTORY = re.compile(r"Primary working directory: (\S+)")


@pytest.fixture
def pool(tmp_path: Path, mock_anthropic: MockAnthropic) -> Iterator[GatewayServer]:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, upstream_max_retries=0)
    with GatewayServer(settings) as server:
        yield server
    assert not claude_processes()


def _ask(
    server: GatewayServer, key: str, messages: Any, model: str = "sonnet", **extra: Any
) -> ChatCompletion:
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        return client.chat.completions.create(model=model, messages=messages, **extra)


def _stats(server: GatewayServer) -> Any:
    assert server.gateway is not None
    return server.gateway.runner.stats()


def _wait_until_idle(server: GatewayServer, count: int) -> None:
    deadline = time.monotonic() + 15
    while _stats(server).idle < count or _stats(server).running or _stats(server).starting:
        assert time.monotonic() < deadline, f"the pool did not settle: {_stats(server)}"
        time.sleep(0.02)


def _process(request: RecordedRequest) -> str:
    """The working directory of the Claude process that sent the request."""
    match = _WORKING_DIRECTORY.search(str(request.body["messages"]))
    assert match is not None, "Claude Code's environment text names no working directory"
    return match.group(1)


def _said(request: RecordedRequest) -> list[tuple[str, str]]:
    """The conversation of an upstream request: each message's role and text, Claude Code's own
    context (system reminders and its environment message) left out."""
    turns = []
    for message in request.body["messages"]:
        if message["role"] == "system":
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        words = []
        for block in blocks:
            if block.get("type") == "text" and not block["text"].startswith("<system-reminder>"):
                words.append(block["text"])
            elif block.get("type") == "tool_use":
                words.append(f"call {block['id']}")
            elif block.get("type") == "tool_result":
                words.append(f"result {block['tool_use_id']}")
        turns.append((message["role"], " | ".join(words)))
    return turns


def _assert_clean(request: RecordedRequest) -> None:
    text = str(request.body["messages"])
    for residue in RESIDUE:
        assert residue not in text, f"{residue!r} reached the upstream"


def test_new_conversations_are_answered_by_live_processes_holding_nothing_of_the_last(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    for number in range(6):
        answer = _ask(pool, key, [{"role": "user", "content": f"conversation {number}"}])
        assert answer.choices[0].message.content == f"Echo: conversation {number}"
        _wait_until_idle(pool, 2)

    requests = mock_anthropic.message_requests
    for number, request in enumerate(requests):
        assert _said(request) == [("user", f"conversation {number}")]
        _assert_clean(request)
    # The first request starts a process and a spare; every later one is answered by one of the two.
    assert _stats(pool).started == 2
    assert len({_process(request) for request in requests}) == 2
    assert _stats(pool).reused == 5
    assert _stats(pool).resets >= 3


def test_a_warmed_up_spare_sends_the_upstream_only_the_new_conversation(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    _ask(pool, key, [{"role": "user", "content": "conversation 0"}])
    _wait_until_idle(pool, 2)  # the process that answered, and the spare once warmed up

    answer = _ask(pool, key, [{"role": "user", "content": "conversation 1"}])

    assert answer.choices[0].message.content == "Echo: conversation 1"
    # The warm-up made no request of its own (not even to the count endpoint).
    first, second = mock_anthropic.requests
    # The spare took the new conversation: it needs no rewind.
    assert _process(second) != _process(first)
    assert _said(second) == [("user", "conversation 1")]
    _assert_clean(second)
    # Its prompt and its directory aside, the spare's first request is what a process started for the
    # request sent: nothing of the warm-up in the messages, the system prompt or anywhere else.
    assert _without(second, "conversation 1") == _without(first, "conversation 0")


def _without(request: RecordedRequest, prompt: str) -> Any:
    """The request's body without what differs between processes and conversations: the prompt, the
    process's own directory (in paths) and its device and session ids."""
    directory = Path(_process(request)).parent.name
    # Claude Code also names its project folder after the path, every other character than a letter or
    # digit made "-" (`run-ab_cd` becomes `run-ab-cd`).
    mangled = re.sub(r"[^A-Za-z0-9]", "-", directory)
    text = request.content.decode().replace(prompt, "<prompt>").replace(directory, "<process>")
    body = json.loads(text.replace(mangled, "<process>"))
    del body["metadata"]["user_id"]
    return body


def test_a_continued_conversation_takes_its_next_turn_in_the_process_that_holds_it(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    first = _ask(pool, key, [{"role": "user", "content": "hello"}])
    _wait_until_idle(pool, 2)
    started, resets = _stats(pool).started, _stats(pool).resets
    history: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "again"},
    ]

    second = _ask(pool, key, history)

    assert second.choices[0].message.content == "Echo: again"
    assert (_stats(pool).started, _stats(pool).resets) == (started, resets)
    before, after = mock_anthropic.message_requests
    assert _process(after) == _process(before)
    assert _said(after) == [("user", "hello"), ("assistant", "Echo: hello"), ("user", "again")]


def test_a_regenerated_answer_rewinds_the_last_exchange_in_the_same_process(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    first = _ask(pool, key, [{"role": "user", "content": "hello"}])
    history: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "tell me more"},
    ]
    _ask(pool, key, history)
    _wait_until_idle(pool, 2)
    started = _stats(pool).started

    # The client asks for the second answer again, worded differently: the process goes back one step.
    _ask(pool, key, [*history[:2], {"role": "user", "content": "tell me more, briefly"}])

    assert _stats(pool).started == started
    *_, held, regenerated = mock_anthropic.message_requests
    assert _process(regenerated) == _process(held)
    assert _said(regenerated) == [
        ("user", "hello"),
        ("assistant", "Echo: hello"),
        ("user", "tell me more, briefly"),
    ]
    _assert_clean(regenerated)


def test_an_edited_history_is_replayed_by_a_process_that_holds_it(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    _ask(pool, key, [{"role": "user", "content": "hello"}])
    _wait_until_idle(pool, 2)
    started = _stats(pool).started
    edited: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Something I never said"},
        {"role": "user", "content": "again"},
    ]

    _ask(pool, key, edited)

    assert _stats(pool).started == started + 1
    assert _said(mock_anthropic.last_request) == [
        ("user", "hello"),
        ("assistant", "Something I never said"),
        ("user", "again"),
    ]


def test_a_live_process_switches_model_without_a_trace(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    _ask(pool, key, [{"role": "user", "content": "on sonnet"}], model="sonnet")
    _wait_until_idle(pool, 2)
    _ask(pool, key, [{"role": "user", "content": "on sonnet too"}], model="sonnet")
    _wait_until_idle(pool, 2)
    started = _stats(pool).started

    for number in range(2):
        _ask(pool, key, [{"role": "user", "content": f"on haiku {number}"}], model="haiku")
        _wait_until_idle(pool, 2)

    assert _stats(pool).started == started
    for request in mock_anthropic.message_requests[2:]:
        assert "haiku" in request.body["model"]
        assert len(_said(request)) == 1
        _assert_clean(request)


@pytest.mark.parametrize("case", ["failed turn", "interrupted stream", "structured output", "tool call"])
def test_a_process_reused_after_an_unusual_turn_sends_only_the_new_conversation(
    case: str, pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    _ask(pool, key, [{"role": "user", "content": "warm up"}])
    _wait_until_idle(pool, 2)
    options = _run_unusual_turn(case, pool, key, mock_anthropic)
    _wait_until_idle(pool, 2)
    unusual = mock_anthropic.message_requests[-1]
    started = _stats(pool).started

    # Two new conversations with the same options: between them they take both idle processes of
    # those options, the one from the unusual turn included.
    for number in range(2):
        if case == "structured output":
            mock_anthropic.queue(Reply(tool_uses=[ToolUse("StructuredOutput", {"answer": number})]))
        _ask(pool, key, [{"role": "user", "content": f"fresh {number}"}], **options)
        _wait_until_idle(pool, 2)

    assert _stats(pool).started == started
    fresh = mock_anthropic.message_requests[-2:]
    assert _process(unusual) in {_process(request) for request in fresh}
    for number, request in enumerate(fresh):
        assert _said(request) == [("user", f"fresh {number}")]
        _assert_clean(request)


def _run_unusual_turn(case: str, server: GatewayServer, key: str, mock: MockAnthropic) -> dict[str, Any]:
    """Runs the unusual turn; returns the options of requests that may reuse its process."""
    question: Any = [{"role": "user", "content": f"the {case}"}]
    if case == "failed turn":
        mock.queue(ErrorReply.server_error())
        with pytest.raises(openai.APIStatusError):
            _ask(server, key, question)
        return {}
    if case == "interrupted stream":
        mock.queue(Reply(text="a long answer " * 40, chunk_size=4, delay=0.02))
        headers = {"Authorization": f"Bearer {key}"}
        body = {"model": "sonnet", "stream": True, "messages": question}
        with httpx.stream(
            "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=30
        ) as response:
            for line in response.iter_lines():
                if "long answer" in line:
                    break  # the client goes away mid-answer
        return {}
    if case == "structured output":
        options: dict[str, Any] = {"response_format": {"type": "json_object"}}
        mock.queue(Reply(tool_uses=[ToolUse("StructuredOutput", {"answer": 42})]))
        answer = _ask(server, key, question, **options)
        assert answer.choices[0].message.content == '{"answer":42}'
        return options
    options = {"tools": [TIME]}
    mock.queue(Reply(tool_uses=[ToolUse("mcp__client__get_time", {})]), Reply(text="It is noon."))
    answer = _ask(server, key, question, **options)
    [call] = answer.choices[0].message.tool_calls or []
    result = {"role": "tool", "tool_call_id": call.id, "content": "12:00"}
    history = [*question, answer.choices[0].message.model_dump(exclude_none=True), result]
    assert _ask(server, key, history, **options).choices[0].message.content == "It is noon."
    return options


TIME: Any = {"type": "function", "function": {"name": "get_time", "description": "The local time."}}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_concurrent_requests_never_share_a_process(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    mock_anthropic.always(Reply(text="slow " * 20, chunk_size=5, delay=0.02))
    answers: list[str] = []

    def ask(number: int) -> None:
        answer = _ask(pool, key, [{"role": "user", "content": f"concurrent {number}"}])
        answers.append(answer.choices[0].message.content or "")

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(answers) == 3
    requests = mock_anthropic.message_requests
    assert len({_process(request) for request in requests}) == 3
    for request in requests:
        assert len(_said(request)) == 1


def test_a_process_is_never_reused_for_another_token(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, first_key = pool.create_key("first")
    other_token = make_oauth_token()
    _, second_key = pool.create_key("second", other_token)
    _ask(pool, first_key, [{"role": "user", "content": "hello"}])
    _wait_until_idle(pool, 2)

    _ask(pool, second_key, [{"role": "user", "content": "hello"}])

    first, second = mock_anthropic.message_requests
    assert _process(first) != _process(second)
    assert second.bearer_token == other_token


# --- a tool loop in one live process ----------------------------------------------------------------

LOOP_STEPS = 10


def _loop_replies(mock: MockAnthropic) -> None:
    mock.queue(
        *(
            Reply(text="", tool_uses=[ToolUse("mcp__client__get_weather", {"city": f"city {step}"})])
            for step in range(LOOP_STEPS)
        ),
        Reply(text="All done."),
    )


def _assert_one_process_loop(server: GatewayServer, mock: MockAnthropic, parks: int, resumes: int) -> None:
    requests = mock.message_requests
    assert len(requests) == LOOP_STEPS + 1
    assert len({_process(request) for request in requests}) == 1
    for step, request in enumerate(requests):
        _assert_clean(request)
        said = _said(request)
        # Each request is the last one plus Claude's call and the client's result: no synthetic turn.
        assert len(said) == 1 + 2 * step
        if step:
            assert said[-2:] == [
                ("assistant", f"call {_call_id(step - 1)}"),
                ("user", f"result {_call_id(step - 1)}"),
            ]
    stats = _stats(server)
    assert (stats.parks - parks, stats.resumes - resumes) == (LOOP_STEPS, LOOP_STEPS)


def _call_id(step: int) -> str:
    return f"toolu_mock_{step + 1:02d}"


def _loop_baseline(server: GatewayServer, key: str, mock: MockAnthropic) -> tuple[int, int]:
    _ask(server, key, [{"role": "user", "content": "warm up"}])
    _wait_until_idle(server, 2)
    mock.reset()
    return _stats(server).parks, _stats(server).resumes


def test_a_chat_tool_loop_runs_in_one_process_with_real_tool_results(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    parks, resumes = _loop_baseline(pool, key, mock_anthropic)
    _loop_replies(mock_anthropic)
    messages: list[Any] = [{"role": "user", "content": "Weather everywhere?"}]
    with openai.OpenAI(api_key=key, base_url=pool.base_url, max_retries=0) as client:
        while True:
            completion = client.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
            message = completion.choices[0].message
            if completion.choices[0].finish_reason != "tool_calls":
                break
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls or []:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": f"sunny in {call.id}"})

    assert message.content == "All done."
    _assert_one_process_loop(pool, mock_anthropic, parks, resumes)
    # Claude Code may add a system-role note of its own after the results: the last user message has them.
    last = [m for m in mock_anthropic.message_requests[-1].body["messages"] if m["role"] == "user"][-1][
        "content"
    ]
    [result] = [block for block in last if block["type"] == "tool_result"]
    assert result["content"] == [{"type": "text", "text": f"sunny in {_call_id(LOOP_STEPS - 1)}"}]


def test_a_messages_tool_loop_runs_in_one_process_with_real_tool_results(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    parks, resumes = _loop_baseline(pool, key, mock_anthropic)
    _loop_replies(mock_anthropic)
    tool: Any = {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "input_schema": WEATHER["function"]["parameters"],
    }
    messages: list[Any] = [{"role": "user", "content": "Weather everywhere?"}]
    with anthropic.Anthropic(api_key=key, base_url=pool.url, max_retries=0) as client:
        while True:
            answer = client.messages.create(model="sonnet", max_tokens=1024, messages=messages, tools=[tool])
            if answer.stop_reason != "tool_use":
                break
            calls = [block for block in answer.content if block.type == "tool_use"]
            said = [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input} for call in calls
            ]
            messages.append({"role": "assistant", "content": said})
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": f"sunny in {call.id}"}
                        for call in calls
                    ],
                }
            )

    assert answer.content[0].type == "text"
    _assert_one_process_loop(pool, mock_anthropic, parks, resumes)


def test_a_responses_tool_loop_runs_in_one_process_with_real_tool_results(
    pool: GatewayServer, mock_anthropic: MockAnthropic
) -> None:
    _, key = pool.create_key()
    parks, resumes = _loop_baseline(pool, key, mock_anthropic)
    _loop_replies(mock_anthropic)
    tool: Any = {"type": "function", **WEATHER["function"]}
    items: list[Any] = [{"role": "user", "content": "Weather everywhere?"}]
    with openai.OpenAI(api_key=key, base_url=pool.base_url, max_retries=0) as client:
        while True:
            response = client.responses.create(model="sonnet", input=items, tools=[tool])
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                break
            for call in calls:
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.call_id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }
                )
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": call.call_id,
                        "output": f"sunny in {call.call_id}",
                    }
                )

    assert response.output_text == "All done."
    _assert_one_process_loop(pool, mock_anthropic, parks, resumes)


def test_a_call_whose_results_never_come_ends_its_process_after_the_deadline(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, tool_call_timeout=1)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        mock_anthropic.queue(Reply(tool_uses=[ToolUse("mcp__client__get_time", {})]))
        _ask(server, key, [{"role": "user", "content": "time?"}], tools=[TIME])
        assert _stats(server).parked == 1
        deadline = time.monotonic() + 10
        while _stats(server).parked:
            assert time.monotonic() < deadline, "the waiting process was not ended"
            time.sleep(0.1)
    finally:
        server.stop()


# --- limits ------------------------------------------------------------------------------------------


def test_idle_processes_are_retired(tmp_path: Path, mock_anthropic: MockAnthropic) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, warm_idle_seconds=0.5)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        _ask(server, key, [{"role": "user", "content": "hi"}])
        deadline = time.monotonic() + 10
        while claude_processes():
            assert time.monotonic() < deadline, "idle processes were not retired"
            time.sleep(0.1)
        assert _stats(server).idle == 0
    finally:
        server.stop()


def test_past_the_process_limit_a_request_waits_then_gets_429(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, max_claude_processes=1, queue_timeout=0.5)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        mock_anthropic.queue(Reply(text="slow answer " * 10, delay=0.1, chunk_size=4))
        opened = threading.Event()

        def slow_stream() -> None:
            headers = {"Authorization": f"Bearer {key}"}
            body = {"model": "sonnet", "stream": True, "messages": [{"role": "user", "content": "x"}]}
            with httpx.stream(
                "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=30
            ) as response:
                for _ in response.iter_lines():
                    opened.set()

        worker = threading.Thread(target=slow_stream)
        worker.start()
        assert opened.wait(10)
        with pytest.raises(openai.RateLimitError) as refused:
            _ask(server, key, [{"role": "user", "content": "y"}])
        assert refused.value.response.headers["retry-after"] == "5"
        worker.join(30)
        answer = _ask(server, key, [{"role": "user", "content": "z"}])
        assert answer.choices[0].message.content == "Echo: z"
    finally:
        server.stop()


def test_at_the_process_limit_new_conversations_share_the_processes_there_are(
    tmp_path: Path, mock_anthropic: MockAnthropic
) -> None:
    settings = make_settings(tmp_path / "data", mock_anthropic.url, warm_processes=1, max_claude_processes=2)
    server = GatewayServer(settings).start()
    try:
        _, key = server.create_key()
        for number in range(4):
            _ask(server, key, [{"role": "user", "content": f"conversation {number}"}])
            _wait_until_idle(server, 2)
        stats = _stats(server)
        assert stats.started == 2
        assert stats.idle + stats.running + stats.parked + stats.starting <= 2
    finally:
        server.stop()
