"""Anthropic's Messages API: POST /v1/messages and /v1/messages/count_tokens; thin handlers.

Requests authenticate with our API key, as `x-api-key` (what the `anthropic` client sends) or as a
bearer token. Errors on these paths, and on any request that carries `anthropic-version`, take
Anthropic's shape (see `wants_anthropic_errors`), so the `anthropic` client raises its own exceptions.
"""

from __future__ import annotations

import secrets

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from claude_code_api import catalog
from claude_code_api.answer.images import inline_image_urls
from claude_code_api.answer.loop import RunSpec
from claude_code_api.apis.anthropic_messages.encode import MessageStreamEncoder, anthropic_error
from claude_code_api.apis.anthropic_messages.fields import POLICY
from claude_code_api.apis.anthropic_messages.schemas import CountTokensRequest, MessagesRequest
from claude_code_api.apis.anthropic_messages.translate import translate_messages_request
from claude_code_api.errors import GatewayError
from claude_code_api.routes import deps

router = APIRouter()

MESSAGES_PATH = "/v1/messages"


@router.post(MESSAGES_PATH)
async def create_message(request: Request, caller: deps.CallerKey, gateway: deps.GatewayDep) -> Response:
    async with deps.admitted_run(
        request, caller, gateway, MessagesRequest, translate_messages_request, "messages", POLICY
    ) as run:
        encoder = MessageStreamEncoder(f"msg_{secrets.token_hex(12)}")
        return await deps.answer_response(gateway, run, encoder, quota=True)


@router.post(f"{MESSAGES_PATH}/count_tokens")
async def count_tokens(request: Request, caller: deps.CallerKey, gateway: deps.GatewayDep) -> Response:
    """Counts through Claude Code, which asks Anthropic's count endpoint: the figure includes Claude
    Code's own system prompt, as every request through this gateway does; nothing is generated."""
    settings = gateway.settings
    body = await deps.read_body(request, settings.max_request_bytes)
    parsed = deps.parse_policed_request(
        body, CountTokensRequest, POLICY, strict=settings.strict_request_fields
    )
    message = parsed.wire
    async with gateway.limiter.admit(caller.key, message.model):
        claude_request = translate_messages_request(
            message, catalog.resolve_model(message.model), settings.image_url_fetch
        )
        ranks = deps.serving_ranks(gateway, caller, claude_request.model, message.model)
        claude_request = await inline_image_urls(claude_request, settings)
        tokens = await gateway.runner.count_tokens(RunSpec(ranks, claude_request, gateway.models))
    return deps.json_response({"input_tokens": tokens}, headers=deps.ignored_fields_headers(parsed.ignored))


def parse_count_tokens_request(body: bytes, *, strict: bool = False) -> CountTokensRequest:
    """Validates a count_tokens request after the field policy; every problem is a 400 naming the
    parameter."""
    return deps.parse_policed_request(body, CountTokensRequest, POLICY, strict=strict).wire


def parse_messages_request(body: bytes, *, strict: bool = False) -> MessagesRequest:
    """Validates a Messages request after the field policy; every problem is a 400 naming the
    parameter."""
    return deps.parse_policed_request(body, MessagesRequest, POLICY, strict=strict).wire


def wants_anthropic_errors(request: Request) -> bool:
    """Whether an error for this request takes Anthropic's shape: on the Messages API's paths, and
    for any request from an Anthropic client (they all send `anthropic-version`)."""
    return request.url.path.startswith(MESSAGES_PATH) or deps.ANTHROPIC_VERSION_HEADER in request.headers


def anthropic_error_response(error: GatewayError) -> Response:
    """An error in Anthropic's shape, with its status and retry headers."""
    return Response(
        orjson.dumps(anthropic_error(error)),
        status_code=error.status,
        headers=error.headers(),
        media_type="application/json",
    )
