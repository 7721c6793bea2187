"""CredentialStore: adds, lists, renames and removes upstream credentials, and records their state.

Secrets are encrypted with the gateway's TokenCipher, as keys' OAuth tokens always were, and never
come back out of the store except as a `StoredCredential` for running Claude Code; records show the
kind, the options, the state and the main secret's last four characters only.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from claude_code_api.errors import InvalidRequestError, NotFoundError, TokenDecryptionError
from claude_code_api.security.encryption import TokenCipher
from claude_code_api.store.credential_kinds import (
    CredentialInput,
    CredentialOptions,
    CredentialSecrets,
    Kind,
    ValidCredential,
    main_secret_field,
    secret_hint,
    validate_credential,
    validate_credential_name,
)
from claude_code_api.store.database import Database
from claude_code_api.store.tables import ApiKeyRow, CredentialRow, KeyCredentialRow, UsageRecordRow
from claude_code_api.upstream import ModelPins, UpstreamCredential

CredentialStateName = Literal["ok", "exhausted", "broken"]
CREDENTIAL_STATES: tuple[CredentialStateName, ...] = ("ok", "exhausted", "broken")
CREDENTIAL_ID_PREFIX = "cred_"
STATE_REASON_MAX_CHARS = 1_000
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class CredentialState:
    """How the credential fares upstream: `ok`, `exhausted` until `until`, or `broken` (for `reason`).

    Routing (issue 17, items 3-5) sets it; nothing here does except `set_state`.
    """

    state: CredentialStateName = "ok"
    reason: str | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Credential:
    """What may be known about a credential: never a secret, only the main one's last four characters."""

    id: str
    name: str
    kind: Kind
    hint: str | None
    options: CredentialOptions
    state: CredentialState
    created_at: datetime
    updated_at: datetime

    @property
    def masked(self) -> str:
        """The main secret as a list shows it: `…abcd`, or `…` before the store has read it."""
        return f"…{self.hint or ''}"


@dataclass(frozen=True)
class StoredCredential:
    """A credential with its secrets decrypted, to start Claude Code with; its repr shows no secret."""

    credential: Credential
    secrets: CredentialSecrets = field(repr=False)

    @property
    def name(self) -> str:
        return self.credential.name

    @property
    def kind(self) -> Kind:
        return self.credential.kind

    def upstream(self) -> UpstreamCredential:
        """The credential as a Claude Code process runs on it."""
        secrets, options = self.secrets, self.credential.options
        return UpstreamCredential(
            kind=self.kind,
            secret=secrets.oauth_token or secrets.api_key,
            access_key_id=secrets.access_key_id,
            secret_access_key=secrets.secret_access_key,
            session_token=secrets.session_token,
            credentials_json=secrets.google_credentials,
            region=options.region,
            project=options.project,
            resource=options.resource,
            base_url=options.base_url,
            models=options.models,
            name=self.name,
            allow_extra_usage=options.allow_extra_usage,
        )


def generate_credential_id() -> str:
    """Returns a new credential id, e.g. `cred_3f9a0c1b7d2e`."""
    return CREDENTIAL_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def new_credential_row(valid: ValidCredential, cipher: TokenCipher, now: datetime) -> CredentialRow:
    """The row of a checked credential, its secrets encrypted; KeyStore uses it for `--oauth-token`."""
    main_field = main_secret_field(valid.kind, valid.secrets)
    given = valid.secrets.given()
    main = given.pop(main_field)
    options = valid.options
    return CredentialRow(
        id=generate_credential_id(),
        name=valid.name,
        kind=valid.kind,
        secret_encrypted=cipher.encrypt(main),
        extra_secrets_encrypted=cipher.encrypt(json.dumps(given)) if given else None,
        secret_hint=secret_hint(valid.kind, valid.secrets),
        region=options.region,
        project=options.project,
        resource=options.resource,
        base_url=options.base_url,
        model=options.models.default,
        opus_model=options.models.opus,
        sonnet_model=options.models.sonnet,
        haiku_model=options.models.haiku,
        allow_extra_usage=options.allow_extra_usage,
        state="ok",
        created_at=now,
        updated_at=now,
    )


def to_credential(row: CredentialRow) -> Credential:
    """The record of a row."""
    return Credential(
        id=row.id,
        name=row.name,
        kind=cast(Kind, row.kind),
        hint=row.secret_hint,
        options=CredentialOptions(
            region=row.region,
            project=row.project,
            resource=row.resource,
            base_url=row.base_url,
            models=ModelPins(
                default=row.model, opus=row.opus_model, sonnet=row.sonnet_model, haiku=row.haiku_model
            ),
            allow_extra_usage=row.allow_extra_usage,
        ),
        state=CredentialState(cast(CredentialStateName, row.state), row.state_reason, row.state_until),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def decrypt_credential(row: CredentialRow, cipher: TokenCipher) -> StoredCredential:
    """The credential of a row with its secrets; TokenDecryptionError under another secret key."""
    extras: dict[str, str] = {}
    if row.extra_secrets_encrypted is not None:
        extras = json.loads(cipher.decrypt(row.extra_secrets_encrypted))
    kind = cast(Kind, row.kind)
    main_field = main_secret_field(kind, CredentialSecrets(access_key_id=extras.get("access_key_id")))
    values = {**extras, main_field: cipher.decrypt(row.secret_encrypted)}
    return StoredCredential(credential=to_credential(row), secrets=CredentialSecrets(**values))


class CredentialStore:
    """Upstream credentials in the database, their secrets encrypted with `cipher`.

    `on_change` is called after a rename, removal or change of state, so that a KeyStore forgets the
    keys it cached with the old record (`KeyStore.credentials` passes its own).
    """

    def __init__(
        self, database: Database, cipher: TokenCipher, on_change: Callable[[], None] | None = None
    ) -> None:
        self._database = database
        self._cipher = cipher
        self._on_change = on_change or (lambda: None)

    async def add_credential(self, given: CredentialInput) -> Credential:
        """Checks and stores a credential and returns its record.

        Raises InvalidRequestError (its `param` names the option at fault) for bad input or a name
        already taken; nothing is stored then.
        """
        valid = validate_credential(given)
        row = new_credential_row(valid, self._cipher, datetime.now(UTC))
        try:
            async with self._database.session() as session:
                await _refuse_taken_name(session, valid.name)
                session.add(row)
                await session.flush()
                return to_credential(row)
        except IntegrityError:
            # Another writer took the name between the check and the insert.
            raise _name_taken(valid.name) from None

    async def list_credentials(self) -> list[Credential]:
        """Returns every credential, by name; fills in the last four characters of migrated ones."""
        async with self._database.session() as session:
            rows = list(await session.scalars(select(CredentialRow).order_by(CredentialRow.name)))
            for row in rows:
                if row.secret_hint is None:
                    self._fill_hint(row)
            return [to_credential(row) for row in rows]

    async def get_credential(self, name: str) -> Credential | None:
        """Returns the credential with this name, or None."""
        async with self._database.session() as session:
            row = await session.scalar(select(CredentialRow).where(CredentialRow.name == name.strip()))
            if row is not None and row.secret_hint is None:
                self._fill_hint(row)
            return None if row is None else to_credential(row)

    async def upstream_credential(self, name: str) -> StoredCredential:
        """The credential with its secrets, for a check an operator asks for; NotFoundError if unknown."""
        async with self._database.session() as session:
            row = await _row_named(session, name)
            return decrypt_credential(row, self._cipher)

    async def rename_credential(self, old: str, new: str) -> Credential:
        """Gives a credential a new name; the keys that rank it, and its usage records, keep it.
        NotFoundError if unknown, InvalidRequestError if the new name is not one or is taken."""
        new = validate_credential_name(new)
        try:
            async with self._database.session() as session:
                row = await _row_named(session, old)
                if new != row.name:
                    await _refuse_taken_name(session, new)
                    # Usage names its credential; it follows the new name, so totals keep their history.
                    await session.execute(
                        update(UsageRecordRow)
                        .where(UsageRecordRow.credential == row.name)
                        .values(credential=new)
                    )
                    row.name = new
                    row.updated_at = datetime.now(UTC)
                    await session.flush()
                record = to_credential(row)
        except IntegrityError:
            raise _name_taken(new) from None
        self._on_change()
        return record

    async def remove_credential(self, name: str) -> Credential:
        """Deletes a credential that no unrevoked key ranks; the ranks of revoked keys go with it.

        Raises NotFoundError if unknown, InvalidRequestError naming the keys that still need it.
        """
        async with self._database.session() as session:
            row = await _row_named(session, name)
            users = await session.execute(
                select(ApiKeyRow.id, ApiKeyRow.name, ApiKeyRow.revoked_at)
                .join(KeyCredentialRow, KeyCredentialRow.key_id == ApiKeyRow.id)
                .where(KeyCredentialRow.credential_id == row.id)
                .order_by(ApiKeyRow.id)
            )
            needing = [
                f"{key_id} ({key_name})" for key_id, key_name, revoked_at in users if revoked_at is None
            ]
            if needing:
                raise InvalidRequestError(
                    f"Credential '{row.name}' is used by key(s) {', '.join(needing)}: give them other "
                    "credentials (keys update KEY_ID --credential NAME) or revoke them first.",
                    param="name",
                )
            await session.execute(delete(KeyCredentialRow).where(KeyCredentialRow.credential_id == row.id))
            record = to_credential(row)
            await session.delete(row)
        self._on_change()
        return record

    async def key_counts(self) -> dict[str, int]:
        """How many unrevoked keys rank each credential, by credential id."""
        async with self._database.session() as session:
            rows = await session.execute(
                select(KeyCredentialRow.credential_id, func.count())
                .join(ApiKeyRow, ApiKeyRow.id == KeyCredentialRow.key_id)
                .where(ApiKeyRow.revoked_at.is_(None))
                .group_by(KeyCredentialRow.credential_id)
            )
            return {credential_id: count for credential_id, count in rows}

    async def set_state(
        self,
        name: str,
        state: CredentialStateName,
        *,
        reason: str | None = None,
        until: datetime | None = None,
    ) -> Credential:
        """Records how the credential fares upstream; for routing. NotFoundError if unknown."""
        if state not in CREDENTIAL_STATES:
            raise InvalidRequestError(f"Unknown credential state '{state}'.", param="state")
        async with self._database.session() as session:
            row = await _row_named(session, name)
            row.state = state
            row.state_reason = None if reason is None else reason[:STATE_REASON_MAX_CHARS]
            row.state_until = until
            row.updated_at = datetime.now(UTC)
            await session.flush()
            record = to_credential(row)
        self._on_change()
        return record

    def _fill_hint(self, row: CredentialRow) -> None:
        try:
            upstream = decrypt_credential(row, self._cipher)
        except TokenDecryptionError:
            return
        row.secret_hint = secret_hint(upstream.kind, upstream.secrets)


async def _row_named(session: AsyncSession, name: str) -> CredentialRow:
    row = await session.scalar(select(CredentialRow).where(CredentialRow.name == name.strip()))
    if row is None:
        raise NotFoundError(f"No credential named '{name.strip()}'; `credentials list` shows them.")
    return row


async def _refuse_taken_name(session: AsyncSession, name: str) -> None:
    if await session.scalar(select(CredentialRow.id).where(CredentialRow.name == name)) is not None:
        raise _name_taken(name)


def _name_taken(name: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"A credential named '{name}' exists already: choose another name, or remove that one first.",
        param="name",
    )
