"""Create the credentials and key_credentials tables; move every key's OAuth token into a credential.

Each key's encrypted token becomes a subscription credential named `<key id>-subscription` (key ids are
unique; key names are not), ranked first for that key, so every key runs exactly as before. The token
moves still encrypted: a migration holds no secret, and the ciphertext needs none to be copied. The
credential's last four characters are filled in by the store, which holds the cipher, when it lists.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MIGRATED_NAME_SUFFIX = "-subscription"
_ID_ALPHABET = string.ascii_lowercase + string.digits

_api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("oauth_token_encrypted", sa.Text),
)
_credentials = sa.table(
    "credentials",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("kind", sa.String),
    sa.column("secret_encrypted", sa.Text),
    sa.column("allow_extra_usage", sa.Boolean),
    sa.column("state", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_key_credentials = sa.table(
    "key_credentials",
    sa.column("key_id", sa.String),
    sa.column("credential_id", sa.String),
    sa.column("rank", sa.Integer),
)


def _credential_id() -> str:
    return "cred_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("extra_secrets_encrypted", sa.Text(), nullable=True),
        sa.Column("secret_hint", sa.String(8), nullable=True),
        sa.Column("region", sa.String(200), nullable=True),
        sa.Column("project", sa.String(200), nullable=True),
        sa.Column("resource", sa.String(200), nullable=True),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("opus_model", sa.String(200), nullable=True),
        sa.Column("sonnet_model", sa.String(200), nullable=True),
        sa.Column("haiku_model", sa.String(200), nullable=True),
        sa.Column("allow_extra_usage", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_credentials"),
        sa.UniqueConstraint("name", name="uq_credentials_name"),
    )
    op.create_table(
        "key_credentials",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("credential_id", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name="fk_key_credentials_key_id_api_keys"),
        sa.ForeignKeyConstraint(
            ["credential_id"], ["credentials.id"], name="fk_key_credentials_credential_id_credentials"
        ),
        sa.PrimaryKeyConstraint("key_id", "credential_id", name="pk_key_credentials"),
    )
    op.create_index("ix_key_credentials_credential_id", "key_credentials", ["credential_id"])

    connection = op.get_bind()
    keys = connection.execute(
        sa.select(_api_keys.c.id, _api_keys.c.created_at, _api_keys.c.oauth_token_encrypted)
    ).all()
    now = datetime.now(UTC)
    for key_id, created_at, encrypted_token in keys:
        credential_id = _credential_id()
        connection.execute(
            _credentials.insert().values(
                id=credential_id,
                name=f"{key_id}{MIGRATED_NAME_SUFFIX}",
                kind="subscription",
                secret_encrypted=encrypted_token,
                allow_extra_usage=False,
                state="ok",
                created_at=created_at,
                updated_at=now,
            )
        )
        connection.execute(
            _key_credentials.insert().values(key_id=key_id, credential_id=credential_id, rank=1)
        )
    # Not in batch mode: copying api_keys would drop a table that other tables' foreign keys name.
    # SQLite drops a plain column in place since 3.35.
    op.drop_column("api_keys", "oauth_token_encrypted")


def downgrade() -> None:
    op.add_column("api_keys", sa.Column("oauth_token_encrypted", sa.Text(), nullable=True))
    connection = op.get_bind()
    # Each key gets back the token of its best-ranked subscription; a key without one cannot go back.
    rows = connection.execute(
        sa.text(
            "SELECT k.id, c.secret_encrypted FROM api_keys k "
            "LEFT JOIN key_credentials kc ON kc.key_id = k.id "
            "LEFT JOIN credentials c ON c.id = kc.credential_id AND c.kind = 'subscription' "
            "ORDER BY k.id, c.id IS NULL, kc.rank, c.name"
        )
    ).all()
    tokens: dict[str, str | None] = {}
    for key_id, encrypted_token in rows:
        tokens.setdefault(key_id, encrypted_token)
    without = sorted(key_id for key_id, token in tokens.items() if token is None)
    if without:
        raise RuntimeError(
            f"Cannot downgrade: key(s) {', '.join(without)} run on no subscription credential, and "
            "before revision 0004 a key needs a subscription's OAuth token. Revoke and "
            "delete them, or give them a subscription first."
        )
    for key_id, encrypted_token in tokens.items():
        connection.execute(
            _api_keys.update().where(_api_keys.c.id == key_id).values(oauth_token_encrypted=encrypted_token)
        )
    if connection.dialect.name != "sqlite":
        # SQLite cannot make a column NOT NULL in place; every row has a token, so it only loses the check.
        op.alter_column("api_keys", "oauth_token_encrypted", existing_type=sa.Text(), nullable=False)
    op.drop_index("ix_key_credentials_credential_id", table_name="key_credentials")
    op.drop_table("key_credentials")
    op.drop_table("credentials")
