"""OpenAI chat completions: POST /v1/chat/completions; a thin handler."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from claude_code_api.apis.openai_chat.encode import ChatChunkEncoder
from claude_code_api.apis.openai_chat.fields import POLICY
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_chat.translate import translate_request
from claude_code_api.routes import deps

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, caller: deps.CallerKey, gateway: deps.GatewayDep) -> Response:
    shape, endpoint = ChatCompletionRequest, "chat.completions"
    async with deps.admitted_run(request, caller, gateway, shape, translate_request, endpoint, POLICY) as run:
        options = run.wire.stream_options
        include_usage = bool(options and options.include_usage)
        encoder = ChatChunkEncoder(f"chatcmpl-{deps.random_id()}", int(time.time()), include_usage)
        return await deps.answer_response(gateway, run, encoder)


def parse_chat_request(body: bytes, *, strict: bool = False) -> ChatCompletionRequest:
    """Validates a chat request after the field policy; every problem is a 400 naming the parameter."""
    return deps.parse_policed_request(body, ChatCompletionRequest, POLICY, strict=strict).wire
