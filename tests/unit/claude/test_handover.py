"""Client function calls held open until the client's results come: ids, order, early and late results."""

from __future__ import annotations

import asyncio

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext

from claude_code_api.claude.handover import ABANDONED, ToolHandOver, ToolOutcome


def outcome(value: str, *, is_error: bool = False) -> ToolOutcome:
    return ToolOutcome(({"type": "text", "text": value},), is_error)


async def ask(handover: ToolHandOver, name: str, call_id: str):
    return await handover.permit(name, {}, ToolPermissionContext(tool_use_id=call_id))


async def test_only_client_functions_are_permitted():
    handover = ToolHandOver()
    assert isinstance(await ask(handover, "mcp__client__get_weather", "toolu_1"), PermissionResultAllow)
    refused = await ask(handover, "Bash", "toolu_2")
    assert isinstance(refused, PermissionResultDeny)
    assert refused.interrupt


async def test_a_call_waits_for_its_result_and_gets_it_as_mcp_content():
    handover = ToolHandOver()
    await ask(handover, "mcp__client__get_weather", "toolu_1")
    waiting = asyncio.ensure_future(handover.handler()({"city": "Paris"}))
    await asyncio.sleep(0)
    assert not waiting.done()
    handover.deliver({"toolu_1": outcome("18 C")})
    assert await waiting == {"content": [{"type": "text", "text": "18 C"}], "is_error": False}


async def test_results_delivered_before_the_calls_run_are_handed_out_by_call_id():
    handover = ToolHandOver()
    handler = handover.handler()
    handover.deliver({"toolu_2": outcome("second", is_error=True), "toolu_1": outcome("first")})
    # The CLI runs the calls of one message one after another, each asking permission first.
    await ask(handover, "mcp__client__a", "toolu_1")
    first = await handler({})
    await ask(handover, "mcp__client__b", "toolu_2")
    second = await handler({})
    assert first["content"][0]["text"] == "first"
    assert second == {"content": [{"type": "text", "text": "second"}], "is_error": True}


async def test_abandoning_releases_a_waiting_call_with_an_error():
    handover = ToolHandOver()
    await ask(handover, "mcp__client__a", "toolu_1")
    waiting = asyncio.ensure_future(handover.handler()({}))
    await asyncio.sleep(0)
    handover.abandon()
    released = await waiting
    assert released["is_error"]
    assert released["content"][0]["text"] == ABANDONED
