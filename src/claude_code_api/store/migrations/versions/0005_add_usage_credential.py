"""Add usage_records.credential: the name of the upstream credential that answered each request.

Nullable: records from before this revision, and requests that ran no credential, have none. A name,
not a foreign key: a credential may be renamed or removed while its usage stays on record.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("credential", sa.String(100), nullable=True))


def downgrade() -> None:
    # SQLite drops a column in place since 3.35; the usage table is named by no other table's key.
    op.drop_column("usage_records", "credential")
