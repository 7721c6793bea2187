"""SQLAlchemy tables: API keys, upstream credentials and their ranks, usage records, admin sessions and the
store's own metadata.

Every timestamp is stored and returned as a timezone-aware UTC datetime, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime; refuses naive datetimes instead of guessing their zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no zone; what we wrote there was UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints let later migrations drop or alter them, as SQLite's batch mode needs.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    key_prefix: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    expires_at: Mapped[datetime | None]
    # A float is exact enough for cost estimates and, unlike Numeric, behaves the same on SQLite.
    budget_usd: Mapped[float | None] = mapped_column(Float)
    budget_period: Mapped[str | None] = mapped_column(String(16))

    last_upstream_success_at: Mapped[datetime | None]
    last_upstream_error_at: Mapped[datetime | None]
    last_upstream_error: Mapped[str | None] = mapped_column(Text)


class UsageRecordRow(Base):
    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_key_id_created_at", "key_id", "created_at"),)

    # SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    model: Mapped[str] = mapped_column(String(100))
    status: Mapped[int] = mapped_column(Integer)
    endpoint: Mapped[str] = mapped_column(String(100))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_creation_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    total_ms: Mapped[int | None] = mapped_column(Integer)
    # The name of the upstream credential that answered (revision 0005); none before it, or without a run.
    credential: Mapped[str | None] = mapped_column(String(100))


class AdminSessionRow(Base):
    """One admin login; created by revision 0002."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StoreMetadataRow(Base):
    """A named value about the store itself, such as the secret verifier; created by revision 0003."""

    __tablename__ = "store_metadata"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CredentialRow(Base):
    """One upstream credential (store/credential_kinds.py); created by revision 0004."""

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    # The main secret alone (so that revision 0003 could move a key's encrypted token here unread),
    # and the kind's other secrets as an encrypted JSON object, or None.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    extra_secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    # The main secret's last four characters; None until the store, which holds the cipher, fills it.
    secret_hint: Mapped[str | None] = mapped_column(String(8))

    region: Mapped[str | None] = mapped_column(String(200))
    project: Mapped[str | None] = mapped_column(String(200))
    resource: Mapped[str | None] = mapped_column(String(200))
    base_url: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    opus_model: Mapped[str | None] = mapped_column(String(200))
    sonnet_model: Mapped[str | None] = mapped_column(String(200))
    haiku_model: Mapped[str | None] = mapped_column(String(200))
    allow_extra_usage: Mapped[bool] = mapped_column(Boolean, default=False)

    state: Mapped[str] = mapped_column(String(16), default="ok")
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class KeyCredentialRow(Base):
    """A key's credential and its rank (1 first; equal ranks share); created by revision 0004."""

    __tablename__ = "key_credentials"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), primary_key=True, index=True)
    rank: Mapped[int] = mapped_column(Integer)
