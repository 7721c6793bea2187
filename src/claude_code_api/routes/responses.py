"""OpenAI's Responses API: POST /v1/responses; a thin handler. Nothing is stored (see
apis/openai_responses/fields.py)."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from claude_code_api.apis.openai_responses.encode import ResponseStreamEncoder, response_echo
from claude_code_api.apis.openai_responses.fields import POLICY
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest
from claude_code_api.apis.openai_responses.translate import translate_responses_request
from claude_code_api.routes import deps

router = APIRouter()


@router.post("/v1/responses")
async def create_response(request: Request, caller: deps.CallerKey, gateway: deps.GatewayDep) -> Response:
    shape, translate = ResponsesRequest, translate_responses_request
    async with deps.admitted_run(request, caller, gateway, shape, translate, "responses", POLICY) as run:
        response_id = f"resp_{secrets.token_hex(16)}"
        echo = response_echo(run.wire, response_id=response_id, created_at=int(time.time()))
        return await deps.answer_response(gateway, run, ResponseStreamEncoder(echo))


def parse_responses_request(body: bytes, *, strict: bool = False) -> ResponsesRequest:
    """Validates a Responses request after the field policy; every problem is a 400 naming the
    parameter."""
    return deps.parse_policed_request(body, ResponsesRequest, POLICY, strict=strict).wire
