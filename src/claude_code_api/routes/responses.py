"""OpenAI's Responses API: POST /v1/responses; a thin handler. Nothing is stored (see responses_api.py)."""

from __future__ import annotations

import secrets
import time

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from claude_code_api import catalog
from claude_code_api.chat import collect_answer, stream_answer
from claude_code_api.images import inline_image_urls
from claude_code_api.responses_api import (
    ResponseStreamEncoder,
    response_echo,
    response_object,
    translate_responses_request,
)
from claude_code_api.responses_schemas import ResponsesRequest
from claude_code_api.routes.api import (
    CallerKey,
    GatewayDep,
    cost_headers,
    event_stream,
    parse_wire_request,
    read_body,
    usage_reporter,
)
from claude_code_api.runner import RunSpec

router = APIRouter()


@router.post("/v1/responses")
async def create_response(request: Request, caller: CallerKey, gateway: GatewayDep) -> Response:
    settings = gateway.settings
    body = await read_body(request, settings.max_request_bytes)
    parsed = parse_responses_request(body)
    async with gateway.limiter.admit(caller.key, parsed.model) as lease:
        claude_request = translate_responses_request(
            parsed, catalog.resolve_model(parsed.model), fetch_image_urls=settings.image_url_fetch
        )
        claude_request = await inline_image_urls(claude_request, settings)
        spec = RunSpec(oauth_token=caller.oauth_token, request=claude_request)
        echo = response_echo(parsed, response_id=f"resp_{secrets.token_hex(16)}", created_at=int(time.time()))
        report = usage_reporter(gateway, caller, "responses")
        if parsed.stream:
            encoder = ResponseStreamEncoder(echo)
            return event_stream(await stream_answer(gateway.runner, spec, encoder, report), lease)
        answer = await collect_answer(gateway.runner, spec, report)
        reply = response_object(
            echo,
            model=answer.end.run.model,
            text=answer.text,
            tool_calls=answer.tool_calls,
            stop_reason=answer.end.stop_reason,
            usage=answer.end.run.usage,
        )
        return Response(
            orjson.dumps(reply), media_type="application/json", headers=cost_headers(answer.end.run)
        )


def parse_responses_request(body: bytes) -> ResponsesRequest:
    """Validates a Responses request strictly; every problem is a 400 naming the parameter."""
    return parse_wire_request(body, ResponsesRequest)
