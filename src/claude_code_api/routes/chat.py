"""OpenAI chat completions: POST /v1/chat/completions; a thin handler."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from claude_code_api.answer.loop import collect_answer, stream_answer
from claude_code_api.apis.openai_chat.encode import ChatChunkEncoder, chat_completion, finish_reason
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_chat.translate import translate_request
from claude_code_api.routes.deps import (
    CallerKey,
    GatewayDep,
    admitted_run,
    cost_headers,
    event_stream,
    json_response,
    parse_wire_request,
    random_id,
)

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, caller: CallerKey, gateway: GatewayDep) -> Response:
    async with admitted_run(
        request, caller, gateway, ChatCompletionRequest, translate_request, "chat.completions"
    ) as run:
        chat = run.wire
        completion_id = f"chatcmpl-{random_id()}"
        created = int(time.time())
        if chat.stream:
            include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
            encoder = ChatChunkEncoder(completion_id, created, include_usage)
            return event_stream(await stream_answer(gateway.runner, run.spec, encoder, run.report), run.lease)
        answer = await collect_answer(gateway.runner, run.spec, run.report)
        completion = chat_completion(
            completion_id=completion_id,
            created=created,
            model=answer.end.run.model,
            text=answer.text,
            finish=finish_reason(answer.end.stop_reason),
            usage=answer.end.run.usage,
            tool_calls=answer.tool_calls,
        )
        return json_response(completion, headers=cost_headers(answer.end.run))


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """Validates a chat request strictly; every problem is a 400 naming the parameter."""
    return parse_wire_request(body, ChatCompletionRequest)
