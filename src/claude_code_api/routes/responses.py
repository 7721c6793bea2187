"""OpenAI's Responses API: POST /v1/responses; a thin handler. Nothing is stored (see
apis/openai_responses/fields.py)."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from claude_code_api.answer.loop import collect_answer, stream_answer
from claude_code_api.apis.openai_responses.encode import (
    ResponseStreamEncoder,
    response_echo,
    response_object,
)
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest
from claude_code_api.apis.openai_responses.translate import translate_responses_request
from claude_code_api.routes.deps import (
    CallerKey,
    GatewayDep,
    admitted_run,
    cost_headers,
    event_stream,
    json_response,
    parse_wire_request,
)

router = APIRouter()


@router.post("/v1/responses")
async def create_response(request: Request, caller: CallerKey, gateway: GatewayDep) -> Response:
    async with admitted_run(
        request, caller, gateway, ResponsesRequest, translate_responses_request, "responses"
    ) as run:
        echo = response_echo(
            run.wire, response_id=f"resp_{secrets.token_hex(16)}", created_at=int(time.time())
        )
        if run.wire.stream:
            encoder = ResponseStreamEncoder(echo)
            return event_stream(await stream_answer(gateway.runner, run.spec, encoder, run.report), run.lease)
        answer = await collect_answer(gateway.runner, run.spec, run.report)
        reply = response_object(
            echo,
            model=answer.end.run.model,
            text=answer.text,
            tool_calls=answer.tool_calls,
            stop_reason=answer.end.stop_reason,
            usage=answer.end.run.usage,
        )
        return json_response(reply, headers=cost_headers(answer.end.run))


def parse_responses_request(body: bytes) -> ResponsesRequest:
    """Validates a Responses request strictly; every problem is a 400 naming the parameter."""
    return parse_wire_request(body, ResponsesRequest)
