"""Alembic environment: runs the revisions on the connection that `Database.upgrade` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from claude_code_api.store.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "These migrations run through claude_code_api.store.database: use Database.upgrade(), or "
        "alembic_config(connection) for other Alembic commands."
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
