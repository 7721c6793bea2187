"""Alembic migrations, shipped inside the package so that `serve` can upgrade at start."""
