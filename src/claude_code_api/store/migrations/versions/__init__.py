"""Alembic revisions, oldest first; Database.upgrade applies those not yet applied."""
