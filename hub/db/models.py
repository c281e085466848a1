"""Typed SQLAlchemy models of the registry: chains, routes, assets, API keys, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.domain.states import DeliveryTxStatus, MessageState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


DEFAULT_ROUTE_MAX_GAS = 500_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone and returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: the hub stores UTC times only")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its value, as text: the stored strings stay exactly what they were
    (never renamed), and rows read back as the enum. A value outside the enum is refused."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class Chain(Base):
    """A registered chain. Two numbers name it, never to be confused: `id`, the key of this
    row (foreign keys to it are named `*_chain_key`), and `chain_id`, the chain's own id (the
    EVM chain id; columns holding one are named `*_chain_id`)."""

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
        UniqueConstraint("src_chain_key", "dst_chain_key", name="uq_routes_src_dst"),
        CheckConstraint("src_chain_key <> dst_chain_key", name="distinct_ends"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Keys of rows in `chains` (`*_chain_key`), never a chain's own id (`chain_id`).
    src_chain_key: Mapped[int] = mapped_column(ForeignKey("chains.id"))
    dst_chain_key: Mapped[int] = mapped_column(ForeignKey("chains.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    status_by: Mapped[str | None] = mapped_column(String(64), default=None)
    # The most gas a message on this route may ask its recipient to be given: the relayer
    # pays it, so a message over the cap is rejected.
    max_gas: Mapped[int] = mapped_column(
        BigInteger, default=DEFAULT_ROUTE_MAX_GAS, server_default=str(DEFAULT_ROUTE_MAX_GAS)
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    src: Mapped[Chain] = relationship(foreign_keys=[src_chain_key], lazy="joined")
    dst: Mapped[Chain] = relationship(foreign_keys=[dst_chain_key], lazy="joined")
    limits: Mapped[list[RouteLimit]] = relationship(
        back_populates="route", lazy="selectin", order_by="RouteLimit.id"
    )


class RouteLimit(Base):
    """A rate limit an admin set for one asset on one route: the token bucket both bridges
    enforce (outbound on the source, inbound on the destination). The guardian stage makes
    the chains agree with it; capacity "0" removes the limit."""

    __tablename__ = "route_limits"
    __table_args__ = (UniqueConstraint("route_id", "asset_id", name="uq_route_limits_asset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"))
    # Decimal text in base units (they exceed 64 bits).
    capacity: Mapped[str] = mapped_column(String(80))
    refill_per_second: Mapped[str] = mapped_column(String(80))
    set_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The guardian's last transaction for it and what went wrong, if anything.
    last_tx: Mapped[str | None] = mapped_column(String(66), default=None)
    last_tx_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    route: Mapped[Route] = relationship(back_populates="limits")
    asset: Mapped[Asset] = relationship(lazy="joined")


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), unique=True)
    home_chain_key: Mapped[int] = mapped_column(ForeignKey("chains.id"))
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
    __table_args__ = (UniqueConstraint("asset_id", "chain_key", name="uq_asset_deployments_chain"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    chain_key: Mapped[int] = mapped_column(ForeignKey("chains.id"))
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


class Message(Base):
    """A cross-chain message, keyed by its id; its state moves only through hub.domain."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_work", "state", "dst_chain_id", "next_attempt_at"),
        Index("ix_messages_src_block", "src_chain_id", "state", "src_block_number"),
    )

    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    src_chain_id: Mapped[int] = mapped_column(BigInteger)
    # the gateway that emitted it (part of the id since version 2; "" for version 1)
    src_gateway: Mapped[str] = mapped_column(String(64))
    dst_chain_id: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(64), index=True)
    recipient: Mapped[str] = mapped_column(String(64))
    # gas the destination gateway forwards to the recipient (0 for version 1)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[MessageState] = mapped_column(EnumText(MessageState))
    src_block_number: Mapped[int] = mapped_column(BigInteger)
    src_block_hash: Mapped[str] = mapped_column(String(66))
    src_tx_hash: Mapped[str] = mapped_column(String(66), index=True)
    src_log_index: Mapped[int] = mapped_column(Integer)
    dst_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    dst_block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    events: Mapped[list[MessageEvent]] = relationship(
        back_populates="message", order_by="MessageEvent.id", lazy="selectin"
    )
    attestations: Mapped[list[Attestation]] = relationship(
        back_populates="message", order_by="Attestation.validator", lazy="selectin"
    )
    refusals: Mapped[list[AttestationRefusal]] = relationship(
        order_by="AttestationRefusal.validator", lazy="selectin"
    )
    transfer: Mapped[Transfer | None] = relationship(
        back_populates="message", lazy="selectin", foreign_keys="Transfer.message_id"
    )


class MessageEvent(Base):
    """One step of a message's timeline: the state it entered, when, and why."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    state: Mapped[MessageState] = mapped_column(EnumText(MessageState))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text, default=None)

    message: Mapped[Message] = relationship(back_populates="events")


class Attestation(Base):
    """A validator's signature over a message for one epoch of the destination's set."""

    __tablename__ = "attestations"
    __table_args__ = (
        UniqueConstraint("message_id", "validator", "epoch", name="uq_attestations_signer"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    validator: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(132))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attestations")


class AttestationRefusal(Base):
    """A validator declined to sign a message (for now): why, and when it looks again."""

    __tablename__ = "attestation_refusals"
    __table_args__ = (
        UniqueConstraint("message_id", "validator", name="uq_attestation_refusals_signer"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    validator: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    retry_at: Mapped[datetime] = mapped_column(default=utcnow)


class Transfer(Base):
    """A token-bridge message, decoded: which asset, how much, from whom to whom."""

    __tablename__ = "transfers"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), index=True)
    # Set on a return: the transfer it gives back (its tokens were never released or minted).
    returns_message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id"), default=None, index=True
    )
    # An operator asked for this transfer to go back to its sender; the guardian stage does it.
    return_requested_by: Mapped[str | None] = mapped_column(String(64), default=None)
    return_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    return_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    return_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    return_error: Mapped[str | None] = mapped_column(Text, default=None)
    home_chain_id: Mapped[int] = mapped_column(BigInteger)
    home_token: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))
    # Decimal text: token amounts exceed 64 bits, and SQLite has no exact wide numeric.
    amount: Mapped[str] = mapped_column(String(80))

    message: Mapped[Message] = relationship(back_populates="transfer", foreign_keys=[message_id])
    asset: Mapped[Asset | None] = relationship(lazy="joined")


class Cursor(Base):
    """How far a chain's gateway logs have been read, and the hash of that block."""

    __tablename__ = "cursors"

    chain_key: Mapped[int] = mapped_column(ForeignKey("chains.id"), primary_key=True)
    # The hub relays what the chain sends from here on, never what came before.
    start_block: Mapped[int] = mapped_column(BigInteger, default=0)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    # The chain's final block when the scan last promoted: every message at or below
    # min(block_number, final_block) is settled as finalized or orphaned.
    final_block: Mapped[int] = mapped_column(BigInteger, default=0)
    final_hash: Mapped[str] = mapped_column(String(66), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def settled_block(self) -> int:
        return min(self.block_number, self.final_block)


class ValidatorSet(Base):
    """A destination gateway's validator set as last read from the chain."""

    __tablename__ = "validator_sets"

    chain_key: Mapped[int] = mapped_column(ForeignKey("chains.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[int] = mapped_column(Integer)
    validators: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """A delivery transaction: what it carries, its nonce and raw bytes (to resend), its fate."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_open", "dst_chain_id", "relayer", "status"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dst_chain_id: Mapped[int] = mapped_column(BigInteger)
    relayer: Mapped[str] = mapped_column(String(64))
    tx_nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    gas: Mapped[int] = mapped_column(BigInteger)
    max_fee: Mapped[str] = mapped_column(String(80))
    priority_fee: Mapped[str] = mapped_column(String(80))
    message_ids: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[DeliveryTxStatus] = mapped_column(EnumText(DeliveryTxStatus))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Lease(Base):
    """A named lock with an expiry, so one submitter at a time works a chain and key."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column()


class Alert(Base):
    """Something an operator must see: a deep reorg, a supply mismatch, a stuck transaction."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
