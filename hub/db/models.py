"""Typed SQLAlchemy models of the registry: chains, routes, assets, API keys, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Chain(Base):
    __tablename__ = "chains"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    chain_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    family: Mapped[str] = mapped_column(String(32))
    rpc_urls: Mapped[list[str]] = mapped_column(JSON)
    finality: Mapped[str] = mapped_column(String(16))
    gateway_address: Mapped[str] = mapped_column(String(64))
    bridge_address: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    status_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Route(Base):
    __tablename__ = "routes"
    __table_args__ = (
        UniqueConstraint("src_chain_id", "dst_chain_id", name="uq_routes_src_dst"),
        CheckConstraint("src_chain_id <> dst_chain_id", name="distinct_ends"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    src_chain_id: Mapped[int] = mapped_column(ForeignKey("chains.id"))
    dst_chain_id: Mapped[int] = mapped_column(ForeignKey("chains.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    status_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    src: Mapped[Chain] = relationship(foreign_keys=[src_chain_id], lazy="joined")
    dst: Mapped[Chain] = relationship(foreign_keys=[dst_chain_id], lazy="joined")


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), unique=True)
    home_chain_id: Mapped[int] = mapped_column(ForeignKey("chains.id"))
    home_token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    home_chain: Mapped[Chain] = relationship(lazy="joined")
    deployments: Mapped[list[AssetDeployment]] = relationship(
        back_populates="asset", lazy="selectin", cascade="all, delete-orphan"
    )


class AssetDeployment(Base):
    """The wrapped token of an asset on a chain other than its home."""

    __tablename__ = "asset_deployments"
    __table_args__ = (UniqueConstraint("asset_id", "chain_id", name="uq_asset_deployments_chain"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    chain_id: Mapped[int] = mapped_column(ForeignKey("chains.id"))
    token_address: Mapped[str] = mapped_column(String(64))

    asset: Mapped[Asset] = relationship(back_populates="deployments")
    chain: Mapped[Chain] = relationship(lazy="joined")


class ApiKey(Base):
    """An API key; only the SHA-256 of the key is stored, the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEntry(Base):
    """Every write to the registry: who, what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
