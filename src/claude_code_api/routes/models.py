"""GET /v1/models (in OpenAI's or, for Anthropic's clients, Anthropic's shape) and GET /v1/health."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from claude_code_api import __version__, catalog
from claude_code_api.apis.anthropic_messages.models import anthropic_model, anthropic_model_list
from claude_code_api.claude.routing import CredentialReport, HealthState
from claude_code_api.claude.runner import RunnerStats
from claude_code_api.errors import ModelNotFoundError
from claude_code_api.routes.deps import ANTHROPIC_VERSION_HEADER, CallerKey, GatewayDep, json_response
from claude_code_api.store.keys import ApiKey, KeyCredentials
from claude_code_api.upstream import UpstreamCredential

router = APIRouter()


@router.get("/v1/models")
async def list_models(
    request: Request,
    caller: CallerKey,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    after_id: str | None = None,
    before_id: str | None = None,
) -> Response:
    """The models the caller's key reaches: those one of its credentials serves."""
    listed = gateway.models.reachable_models(_credentials(caller))
    if ANTHROPIC_VERSION_HEADER in request.headers:
        page = anthropic_model_list(listed, limit=limit, after_id=after_id, before_id=before_id)
        return json_response(page)
    return json_response(catalog.openai_model_list(listed))


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(request: Request, model_id: str, caller: CallerKey, gateway: GatewayDep) -> Response:
    """One model the caller's key reaches; 404 for one it does not, as for one the gateway does not know."""
    if not gateway.models.reaches(_credentials(caller), model_id):
        raise ModelNotFoundError(model_id)
    if ANTHROPIC_VERSION_HEADER in request.headers:
        return json_response(anthropic_model(model_id))
    return json_response(catalog.openai_model(model_id))


def _credentials(caller: KeyCredentials) -> list[UpstreamCredential]:
    return [credential for rank in caller.upstream_ranks for credential in rank]


@router.get("/v1/health")
async def health(gateway: GatewayDep) -> Response:
    store_ok = await gateway.database.ping()
    # A mismatched secret fails every keyed request (503); a secret file changed on disk fails the next start.
    secret = await gateway.secret_state() if store_ok else "unknown"
    reports, now = gateway.credential_reports(), gateway.runner.router.now()
    keys = await gateway.keys.list_keys() if store_ok else []
    stranded = keys_without_usable_credential(keys, reports, now)
    body = {
        "status": "ok" if store_ok and secret == "ok" and not stranded else "degraded",
        "version": __version__,
        "store": "ok" if store_ok else "unreachable",
        "secret": secret,
        "credentials": credential_counts(reports.values(), now),
        "keys_without_usable_credential": stranded,
        **_processes(gateway.runner.stats()),
    }
    return json_response(body, status=200 if store_ok and secret != "mismatch" else 503)


def credential_counts(reports: Iterable[CredentialReport], now: float) -> dict[HealthState, int]:
    """How many credentials are in each state, as routing acts on it now."""
    counts: dict[HealthState, int] = {"ok": 0, "exhausted": 0, "broken": 0}
    for report in reports:
        counts[report.effective_state(now)] += 1
    return counts


def keys_without_usable_credential(
    keys: Iterable[ApiKey], reports: Mapping[str, CredentialReport], now: float
) -> int:
    """How many active keys have no credential that could answer now (each exhausted or broken, or none
    at all): their requests get a 429 or 401 until one comes back. Counted, not named: health is public."""
    stranded = 0
    for key in keys:
        if not key.is_active_at(_as_datetime(now)):
            continue
        names = [name for rank in key.credential_ranks for name in rank]
        if not any(name not in reports or reports[name].effective_state(now) == "ok" for name in names):
            stranded += 1
    return stranded


def _as_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _processes(stats: RunnerStats) -> dict[str, object]:
    """Every live Claude process, and how many are in each state."""
    states = {
        "running": stats.running,
        "idle": stats.idle,
        "parked": stats.parked,
        "starting": stats.starting,
    }
    return {"claude_processes": sum(states.values()), "claude_process_states": states}
