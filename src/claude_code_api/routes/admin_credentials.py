"""The admin site's credential pages: list, add (a form per kind), rename, remove with confirmation, and a
key's credentials in ranks. Same sessions and CSRF checks as `routes/admin.py`; pages work without
JavaScript, and a refused form comes back with its message and nothing stored.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from claude_code_api.errors import InvalidRequestError, NotFoundError
from claude_code_api.gateway import Gateway
from claude_code_api.routes.admin import (
    PageSession,
    _check_csrf,
    _key_or_404,
    _login_redirect,
    _read_form,
)
from claude_code_api.routes.admin_credential_forms import (
    MAX_RANKS,
    SUBSCRIPTION_TERMS,
    CredentialForm,
    rank_choices,
    read_credential_form,
    read_rank_form,
)
from claude_code_api.routes.admin_credential_status import credential_statuses
from claude_code_api.routes.admin_site import Site, render_page
from claude_code_api.routes.deps import GatewayDep
from claude_code_api.security.csrf import CSRF_FORM_FIELD
from claude_code_api.store.credential_kinds import (
    KIND_TITLES,
    KINDS,
)
from claude_code_api.store.credentials import Credential
from claude_code_api.store.sessions import AdminSession

router = APIRouter(include_in_schema=False)

# --- the list ---------------------------------------------------------------------------------------


@router.get("/admin/credentials")
async def credentials_page(request: Request, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    router = gateway.runner.router
    statuses = credential_statuses(
        await gateway.keys.credentials.list_credentials(),
        gateway.credential_reports(),
        await gateway.keys.list_keys(),
        await gateway.usage.totals_by_credential(),
        router.now(),
    )
    return render_page(
        request,
        "credentials.html",
        session=session,
        statuses=statuses,
        kind_titles=KIND_TITLES,
        added=request.query_params.get("added"),
        removed=request.query_params.get("removed"),
        renamed=request.query_params.get("renamed"),
    )


# --- add ---------------------------------------------------------------------------------------------


@router.get("/admin/credentials/new")
async def new_credential_form(request: Request, session: PageSession) -> Response:
    if session is None:
        return _login_redirect(request)
    kind = request.query_params.get("kind", "subscription")
    return _new_credential_page(
        request, session, CredentialForm(kind=kind if kind in KINDS else "subscription")
    )


@router.post("/admin/credentials/new")
async def add_credential(request: Request, site: Site, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    shown, given = read_credential_form(form)
    try:
        record = await gateway.keys.credentials.add_credential(given)
    except InvalidRequestError as exc:
        refused = CredentialForm(
            kind=shown.kind if shown.kind in KINDS else "subscription",
            name=shown.name,
            options=shown.options,
            allow_extra_usage=shown.allow_extra_usage,
            error=exc.message,
            error_field=exc.param,
        )
        return _new_credential_page(request, session, refused, status=400)
    return RedirectResponse(f"/admin/credentials?added={quote(record.name)}", status_code=303)


def _new_credential_page(
    request: Request, session: AdminSession, form: CredentialForm, status: int = 200
) -> HTMLResponse:
    return render_page(
        request,
        "credential_new.html",
        status=status,
        session=session,
        form=form,
        kinds=KINDS,
        kind_titles=KIND_TITLES,
        subscription_terms=SUBSCRIPTION_TERMS,
    )


# --- rename and remove -------------------------------------------------------------------------------


@router.get("/admin/credentials/{name}/rename")
async def rename_form(request: Request, name: str, session: PageSession, gateway: GatewayDep) -> Response:
    if session is None:
        return _login_redirect(request)
    credential = await _credential_or_404(gateway, name)
    return render_page(
        request, "credential_rename.html", session=session, credential=credential, new_name="", error=None
    )


@router.post("/admin/credentials/{name}/rename")
async def rename_submit(
    request: Request, name: str, site: Site, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    credential = await _credential_or_404(gateway, name)
    new_name = form.get("new_name", "")
    try:
        renamed = await gateway.keys.credentials.rename_credential(credential.name, new_name)
    except InvalidRequestError as exc:
        return render_page(
            request,
            "credential_rename.html",
            status=400,
            session=session,
            credential=credential,
            new_name=new_name,
            error=exc.message,
        )
    return RedirectResponse(f"/admin/credentials?renamed={quote(renamed.name)}", status_code=303)


@router.get("/admin/credentials/{name}/remove")
async def remove_confirmation(
    request: Request, name: str, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    credential = await _credential_or_404(gateway, name)
    return render_page(request, "credential_remove.html", session=session, credential=credential, error=None)


@router.post("/admin/credentials/{name}/remove")
async def remove_submit(
    request: Request, name: str, site: Site, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    credential = await _credential_or_404(gateway, name)
    try:
        await gateway.keys.credentials.remove_credential(credential.name)
    except InvalidRequestError as exc:
        return render_page(
            request,
            "credential_remove.html",
            status=400,
            session=session,
            credential=credential,
            error=exc.message,
        )
    return RedirectResponse(f"/admin/credentials?removed={quote(credential.name)}", status_code=303)


async def _credential_or_404(gateway: Gateway, name: str) -> Credential:
    credential = await gateway.keys.credentials.get_credential(name)
    if credential is None:
        raise NotFoundError(f"No credential named '{name}'.")
    return credential


# --- a key's credentials -----------------------------------------------------------------------------


@router.get("/admin/keys/{key_id}/credentials")
async def key_credentials_form(
    request: Request, key_id: str, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    key = await _key_or_404(gateway, key_id)
    return await _key_credentials_page(request, session, gateway, key.id, key.name, key.credential_ranks)


@router.post("/admin/keys/{key_id}/credentials")
async def key_credentials_submit(
    request: Request, key_id: str, site: Site, session: PageSession, gateway: GatewayDep
) -> Response:
    if session is None:
        return _login_redirect(request)
    form = await _read_form(request)
    _check_csrf(request, site, session, form.get(CSRF_FORM_FIELD))
    key = await _key_or_404(gateway, key_id)
    ranks: tuple[tuple[str, ...], ...] = key.credential_ranks
    try:
        ranks = read_rank_form(form)
        await gateway.keys.update_key(key.id, credentials=ranks)
    except InvalidRequestError as exc:
        return await _key_credentials_page(
            request, session, gateway, key.id, key.name, ranks, exc.message, 400
        )
    return RedirectResponse(f"/admin/keys/{quote(key.id)}?saved=credentials", status_code=303)


async def _key_credentials_page(
    request: Request,
    session: AdminSession,
    gateway: Gateway,
    key_id: str,
    key_name: str,
    ranks: tuple[tuple[str, ...], ...],
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render_page(
        request,
        "key_credentials.html",
        status=status,
        session=session,
        key_id=key_id,
        key_name=key_name,
        choices=rank_choices(await gateway.keys.credentials.list_credentials(), ranks),
        max_ranks=MAX_RANKS,
        error=error,
    )
