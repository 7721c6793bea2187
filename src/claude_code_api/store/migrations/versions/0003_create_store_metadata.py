"""Create the store_metadata table.

Named values about the store itself; the first is the secret verifier (store/verifier.py), a value
encrypted with the secret the store's OAuth tokens are encrypted with.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_metadata",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_metadata"),
    )


def downgrade() -> None:
    op.drop_table("store_metadata")
