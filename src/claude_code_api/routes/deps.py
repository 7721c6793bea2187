"""What every API route shares: the gateway, the caller's key, the request body, strict parsing into
the wire shape and its 400, and the skeleton of a run (admission, translation, images, usage report,
the streamed response)."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask

from claude_code_api import catalog
from claude_code_api.access import note_caller, note_run
from claude_code_api.answer.events import ReportSink, RunReport
from claude_code_api.answer.fields import IGNORED_FIELDS_HEADER, Policy, apply_policy, header_value
from claude_code_api.answer.images import inline_image_urls
from claude_code_api.answer.loop import AnswerEncoder, RunSpec, collect_answer, is_final_chunk, stream_answer
from claude_code_api.answer.request import ClaudeRequest
from claude_code_api.apis.anthropic_messages.schemas import MessagesRequest
from claude_code_api.apis.openai_chat.schemas import ChatCompletionRequest
from claude_code_api.apis.openai_responses.schemas import ResponsesRequest
from claude_code_api.catalog import ModelChoice
from claude_code_api.claude.routing import answered_by
from claude_code_api.errors import (
    AuthenticationError,
    InvalidRequestError,
    KeyExpiredError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from claude_code_api.gateway import Gateway
from claude_code_api.security.ratelimit import Lease
from claude_code_api.sse import STREAM_HEADERS
from claude_code_api.store.keys import KeyCredentials
from claude_code_api.store.usage import UsageRecord
from claude_code_api.upstream import UpstreamCredential

WireRequest = TypeVar("WireRequest", bound=BaseModel)
# A request that asks Claude for an answer, in one of the APIs' wire shapes.
AnswerRequest = TypeVar("AnswerRequest", bound=ChatCompletionRequest | MessagesRequest | ResponsesRequest)

logger = logging.getLogger(__name__)

COST_HEADER = "x-claude-cost-usd"
# Anthropic's clients send it with every request; OpenAI's never do.
ANTHROPIC_VERSION_HEADER = "anthropic-version"


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def authenticate_caller(request: Request, gateway: GatewayDep) -> KeyCredentials:
    """The key named by `Authorization: Bearer sk-...` (or, as Anthropic's clients send it,
    `x-api-key: sk-...`); 401 when missing, unknown or revoked.

    An expired key gets a 429 that says so and tells the client not to retry. Lookups are cached for
    a second (KEY_CACHE_SECONDS): a key revoked on another instance is refused here within that time.
    """
    header = request.headers.get("authorization", "")
    scheme, _, api_key = header.partition(" ")
    api_key = api_key.strip() if scheme.lower() == "bearer" else ""
    api_key = api_key or request.headers.get("x-api-key", "").strip()
    if not api_key:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-...' "
            "(or as 'x-api-key: sk-...'); "
            "keys are made on the admin site or with `claude-code-api keys create`."
        )
    credentials = await gateway.keys.identify(api_key)
    if credentials is None:
        raise AuthenticationError(
            f"Incorrect API key provided: {_masked(api_key)}. It is unknown or revoked."
        )
    note_caller(credentials.key.id)
    if credentials.key.expires_at is not None and not credentials.key.is_active:
        raise KeyExpiredError(credentials.key.expires_at)
    return credentials


CallerKey = Annotated[KeyCredentials, Depends(authenticate_caller)]


def event_stream(
    events: AsyncIterator[bytes], lease: Lease, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """An SSE response that holds the caller's concurrency `lease` until the stream is over.

    The stream releases it as the answer's final chunk (for chat, the one ending in `[DONE]`) goes
    out, or when it ends or is closed; when the client leaves before the first byte, Starlette never
    starts the stream, and the background task releases it.
    """
    held = lease.release_after(events, last=is_final_chunk)
    return StreamingResponse(
        held,
        media_type="text/event-stream",
        headers={**STREAM_HEADERS, **(headers or {})},
        background=BackgroundTask(lease.release),
    )


def _masked(api_key: str) -> str:
    if len(api_key) < 12:
        return "****"
    return f"{api_key[:5]}****{api_key[-4:]}"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes without reading further."""
    declared = request.headers.get("content-length")
    too_large = PayloadTooLargeError(
        f"The request body exceeds this gateway's limit of {limit} bytes (MAX_REQUEST_BYTES)."
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def parse_wire_request(body: bytes, shape: type[WireRequest]) -> WireRequest:
    """Validates a request body strictly against its wire shape; every problem is a 400 naming the
    parameter."""
    if not body.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.")
    try:
        return shape.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise validation_error(exc.errors(), _document(body)) from None


@dataclass(frozen=True)
class PolicedRequest(Generic[WireRequest]):
    """A request parsed after its API's field policy: the wire model and the fields it ignored."""

    wire: WireRequest
    ignored: tuple[str, ...]


def parse_policed_request(
    body: bytes, shape: type[WireRequest], policy: Policy, *, strict: bool = False
) -> PolicedRequest[WireRequest]:
    """Applies the API's field `policy` to a body (ignored fields out and named, refused ones a 400,
    unknown ones ignored or, with `strict`, refused), then validates what is left strictly."""
    if not body.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return PolicedRequest(parse_wire_request(body, shape), ())  # Pydantic words the JSON error
    applied = apply_policy(document, policy, strict=strict)
    if applied.ignored:
        logger.debug("%s: ignored request fields: %s", policy.name, ", ".join(applied.ignored))
    cleaned = orjson.dumps(applied.document)
    try:
        wire = shape.model_validate_json(cleaned, strict=True)
    except ValidationError as exc:
        raise validation_error(exc.errors(), applied.document) from None
    return PolicedRequest(wire, applied.ignored)


def ignored_fields_headers(ignored: Sequence[str]) -> dict[str, str]:
    """The `x-ignored-fields` header naming what a request carried and the gateway did not act on."""
    return {IGNORED_FIELDS_HEADER: header_value(ignored)} if ignored else {}


def _document(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def validation_error(errors: Sequence[Any], document: Any = None) -> InvalidRequestError:
    """Pydantic's most telling error as an OpenAI 400 naming the offending parameter.

    Pydantic puts the union member it tried (a role, `str`, `list[...]`) into error locations; with the
    request `document` at hand, only the parts that exist in it make up the parameter's path. Of the
    errors a union gives for the first parameter at fault, the one that got deepest into it says most.
    """
    if errors[0]["type"] == "json_invalid":
        return InvalidRequestError(
            "We could not parse the JSON body of your request: "
            f"{errors[0].get('ctx', {}).get('error', 'invalid JSON')}."
        )
    located = [(_located(error, document), error) for error in errors]
    # The first problem's parameter; among a union's alternatives for it, the most telling error.
    field = located[0][0][:1]
    alternatives = [item for item in located if item[0][:1] == field]
    path, error = min(alternatives, key=lambda item: (-len(item[0]), item[1]["type"].endswith("_type")))
    param = _param_path(path)
    if error["type"] == "extra_forbidden":
        return InvalidRequestError(f"Unrecognized request argument supplied: {param}", param=param or None)
    if error["type"] == "missing":
        return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param)
    if error["type"] in ("model_type", "model_attributes_type", "dict_type") and not path:
        return InvalidRequestError("The request body must be a JSON object.")
    return InvalidRequestError(f"Invalid value for '{param}': {error['msg']}.", param=param or None)


def _located(error: Any, document: Any) -> list[str | int]:
    location = [part for part in error["loc"] if part != "body"]
    if document is None:
        return location
    path: list[str | int] = []
    node = document
    for position, part in enumerate(location):
        inside_list = isinstance(part, int) and isinstance(node, list) and part < len(node)
        inside_object = isinstance(part, str) and isinstance(node, dict) and part in node
        if inside_list or inside_object:
            node = node[part]
        elif error["type"] == "missing" and position == len(location) - 1:
            pass  # the missing field itself
        else:
            continue  # a union member's name, not a place in the request
        path.append(part)
    return path


def _param_path(location: Sequence[str | int]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def usage_reporter(gateway: Gateway, caller: KeyCredentials, endpoint: str) -> ReportSink:
    """Where a route's runs are reported: the access record and the key's usage."""

    def report(run: RunReport) -> None:
        # The runner names the credential it chose in this task's context; the report runs in it.
        credential = answered_by.get()
        note_run(run, None if credential is None else credential.name)
        gateway.note_token_outcome(caller.key.id, run.error)
        gateway.record_usage(
            UsageRecord(
                key_id=caller.key.id,
                created_at=datetime.now(UTC),
                endpoint=endpoint,
                model=run.model,
                status=run.status,
                input_tokens=run.usage.input_tokens,
                output_tokens=run.usage.output_tokens,
                cache_creation_tokens=run.usage.cache_creation_tokens,
                cache_read_tokens=run.usage.cache_read_tokens,
                cost_usd=run.cost_usd or 0.0,
                first_token_ms=None if run.first_token_ms is None else round(run.first_token_ms),
                total_ms=round(run.total_ms),
                credential=None if credential is None else credential.name,
            )
        )

    return report


def cost_headers(run: RunReport) -> dict[str, str] | None:
    """The `x-claude-cost-usd` header: what Claude Code reports the run cost, at list price."""
    return {COST_HEADER: f"{run.cost_usd:.6f}"} if run.cost_usd is not None else None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response, serialised with orjson."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def random_id() -> str:
    """A random id of 24 letters and digits."""
    return secrets.token_urlsafe(18).replace("-", "").replace("_", "")[:24]


@dataclass(frozen=True)
class AdmittedRun(Generic[AnswerRequest]):
    """A request admitted for a run: its wire shape, what Claude Code is asked, the caller's
    concurrency lease and where the run is reported."""

    wire: AnswerRequest
    spec: RunSpec
    lease: Lease
    report: ReportSink
    ignored: tuple[str, ...] = ()


def serving_ranks(
    gateway: Gateway, caller: KeyCredentials, claude_model: str, requested: str
) -> tuple[tuple[UpstreamCredential, ...], ...]:
    """The caller's credentials that serve a model, in their ranks; a 404 naming the model as asked for
    when the key has credentials but none of them serves it."""
    ranks = caller.upstream_ranks
    serving = gateway.models.serving(ranks, claude_model)
    if ranks and not serving:
        raise ModelNotFoundError(requested)
    return serving


Translator = Callable[[AnswerRequest, ModelChoice, bool], ClaudeRequest]


@contextlib.asynccontextmanager
async def admitted_run(
    request: Request,
    caller: KeyCredentials,
    gateway: Gateway,
    shape: type[AnswerRequest],
    translate: Translator[AnswerRequest],
    endpoint: str,
    policy: Policy,
) -> AsyncIterator[AdmittedRun[AnswerRequest]]:
    """The skeleton of every answering route: reads the body and parses it after the API's field
    `policy`, admits the caller (holding the lease for the context), translates the request and
    fetches its image URLs."""
    settings = gateway.settings
    body = await read_body(request, settings.max_request_bytes)
    parsed = parse_policed_request(body, shape, policy, strict=settings.strict_request_fields)
    wire = parsed.wire
    async with gateway.limiter.admit(caller.key, wire.model) as lease:
        claude_request = translate(wire, catalog.resolve_model(wire.model), settings.image_url_fetch)
        ranks = serving_ranks(gateway, caller, claude_request.model, wire.model)
        claude_request = await inline_image_urls(claude_request, settings)
        spec = RunSpec(ranks, claude_request, gateway.models)
        yield AdmittedRun(wire, spec, lease, usage_reporter(gateway, caller, endpoint), parsed.ignored)


async def answer_response(
    gateway: Gateway, run: AdmittedRun[AnswerRequest], encoder: AnswerEncoder, *, quota: bool = False
) -> Response:
    """Runs Claude for an admitted request: the answer streamed in the encoder's format, or whole as
    JSON with the run's cost; either names the request's ignored fields in `x-ignored-fields`. With
    `quota`, the answering subscription's quota headers go along (what Anthropic's own answers carry,
    and Claude Code as a client shows)."""
    ignored = ignored_fields_headers(run.ignored)
    if run.wire.stream:
        events = await stream_answer(gateway.runner, run.spec, encoder, run.report)
        quota_headers = gateway.runner.answered_quota() if quota else {}
        return event_stream(events, run.lease, {**ignored, **quota_headers})
    answer = await collect_answer(gateway.runner, run.spec, run.report)
    quota_headers = gateway.runner.answered_quota() if quota else {}
    return json_response(
        encoder.whole(answer), headers={**(cost_headers(answer.end.run) or {}), **ignored, **quota_headers}
    )
