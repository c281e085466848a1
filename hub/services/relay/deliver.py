"""Deliver: per destination chain and relayer key, one submitter at a time batches attested
messages, simulates, signs, records the transaction, and only then sends it.

Recording before sending is what makes a crash harmless: a transaction the database knows
is sent again unchanged (same nonce, same bytes) by confirm, never rebuilt, and the gateway
skips any id already delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from eth_account import Account
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from adapters.base import (
    AdapterError,
    ChainAdapter,
    FeeQuote,
    SignedMessage,
    SignedTx,
    SimulationError,
    Submitter,
)
from adapters.base import (
    Message as WireMessage,
)
from hub.db.models import Asset, Chain, Delivery, Message, Route, Transfer, utcnow
from hub.domain.states import (
    OPEN_DELIVERY_TX,
    AssetStatus,
    ChainStatus,
    DeliveryTxStatus,
    MessageState,
    RouteStatus,
)
from hub.services.messages import backoff_policy, lifecycle
from hub.services.relay import funds
from hub.services.relay.attestations import (
    promote_signed,
    refresh_validator_set,
    signatures_for,
)
from hub.services.relay.ports import Ports
from hub.settings import Settings

log = logging.getLogger("hub.relay.deliver")
_S = MessageState


@dataclass
class DeliverReport:
    chain: str
    sent: int = 0
    tx_hash: str | None = None
    dropped: int = 0
    note: str | None = None
    # what the runner does once this stage's transaction is committed: send the recorded tx
    after_commit: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    @property
    def busy(self) -> bool:
        """Whether this step changed anything worth a log event."""
        return bool(self.sent)


def lease_name(chain: Chain, relayer: str) -> str:
    return f"deliver:{chain.chain_id}:{relayer.lower()}"


def relayer_address(key: str) -> str:
    return str(Account.from_key(key).address)


def deliver_lease(chain: Chain, ports: Ports) -> str:
    """One submitter per destination chain and relayer key."""
    return lease_name(chain, relayer_address(ports.key("relayer")))


def deliver(session: Session, chain: Chain, ports: Ports) -> DeliverReport:
    """The deliver stage on one destination chain: pick, simulate, sign and record one batch
    (messages -> submitted). It is sent only once the runner has committed the record
    (`after_commit`): a crash between the two is harmless, confirm resends the bytes."""
    key = ports.key("relayer")
    relayer = relayer_address(key)
    report = DeliverReport(chain.name)
    if chain.status != ChainStatus.ACTIVE:
        return report
    settings = ports.settings
    adapter = ports.adapter(chain)
    refresh_validator_set(session, chain, adapter)  # never sign for a stale epoch
    promote_signed(session, chain)
    if _in_flight(session, chain, relayer) >= settings.max_in_flight:
        report.note = "in-flight limit reached"
        return report
    batch = pick_batch(session, chain, settings.batch_size)
    if not batch:
        return report
    signed = _simulated(session, chain, adapter, batch, relayer, settings)
    if not signed:
        return report
    batch, gas = signed
    fee = adapter.fee_quote()
    if not funds.can_pay(session, chain, adapter, relayer, gas * fee.max_fee_per_gas):
        report.note = "the relayer cannot pay for a delivery"
        return report
    tx = _sign(session, chain, adapter, batch, relayer, key, gas, fee)
    _record(session, chain, tx, batch)
    report.after_commit = partial(_send, chain.name, adapter, tx, report, [m.id for m in batch])
    return report


def _in_flight(session: Session, chain: Chain, relayer: str) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Delivery.tx_nonce))).where(
                Delivery.dst_chain_id == chain.chain_id,
                Delivery.relayer == relayer,
                Delivery.status.in_(OPEN_DELIVERY_TX),
            )
        )
        or 0
    )


def pick_batch(session: Session, chain: Chain, size: int) -> list[Message]:
    """New messages first, with a quarter of the batch kept for retries that are due, so
    retries never starve new messages and are never starved themselves."""
    now = utcnow()
    due = or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now)
    base = _deliverable(chain).where(Message.state == _S.ATTESTED.value, due).limit(size)
    fresh = list(session.scalars(base))
    retry_room = max(1, size // 4) if len(fresh) >= size else size - len(fresh)
    retries = list(
        session.scalars(
            _deliverable(chain)
            .where(
                Message.state == _S.FAILED.value,
                Message.next_attempt_at.is_not(None),
                Message.next_attempt_at <= now,
            )
            .limit(retry_room)
        )
    )
    return fresh[: size - len(retries)] + retries


def _deliverable(chain: Chain) -> Select[Message]:
    """Messages for this chain on an active route, from an active chain, of an active asset."""
    src = Chain.__table__.alias("src")
    paused_asset = (
        select(Transfer.message_id)
        .join(Asset, Transfer.asset_id == Asset.id)
        .where(Transfer.message_id == Message.id, Asset.status != AssetStatus.ACTIVE)
    )
    returning = select(Transfer.message_id).where(
        Transfer.message_id == Message.id, Transfer.return_requested_at.is_not(None)
    )
    return (
        select(Message)
        .join(src, src.c.chain_id == Message.src_chain_id)
        .join(Route, and_(Route.src_chain_key == src.c.id, Route.dst_chain_key == chain.id))
        .where(
            Message.dst_chain_id == chain.chain_id,
            Route.status == RouteStatus.ACTIVE,
            Message.gas_limit <= Route.max_gas,
            src.c.status == ChainStatus.ACTIVE,
            ~paused_asset.exists(),
            ~returning.exists(),
        )
        .order_by(Message.created_at, Message.id)
    )


def wire_message(message: Message) -> WireMessage:
    return WireMessage(
        src_chain_id=message.src_chain_id,
        src_gateway=message.src_gateway,
        dst_chain_id=message.dst_chain_id,
        nonce=message.nonce,
        sender=message.sender,
        recipient=message.recipient,
        gas_limit=message.gas_limit,
        payload=message.payload,
        version=message.version,
    )


# Reverts that say nothing about the messages (the destination gateway is paused): the
# messages wait, no attempt is charged.
CHAIN_LEVEL_REVERTS = ("EnforcedPause()",)


def _simulated(
    session: Session,
    chain: Chain,
    adapter: ChainAdapter,
    batch: list[Message],
    relayer: str,
    settings: Settings,
) -> tuple[list[Message], int] | None:
    """Simulate the batch; when it reverts, simulate each message alone, set aside (failed,
    with its reason and a backoff) exactly those that revert alone, and go on with the rest.
    One message that cannot be delivered never holds up the others."""
    signed = signed_batch(session, chain, batch)
    try:
        return batch, adapter.simulate_delivery(chain.gateway_address, signed, relayer)
    except SimulationError as exc:
        if _chain_level(exc):
            log.warning("delivery blocked", extra={"chain": chain.name, "reason": exc.reason})
            return None
    good: list[tuple[Message, SignedMessage]] = []
    for message, one in zip(batch, signed, strict=True):
        try:
            adapter.simulate_delivery(chain.gateway_address, [one], relayer)
        except SimulationError as exc:
            if _chain_level(exc):
                return None
            _fail(session, message, f"simulation reverted: {exc.reason or exc}", settings)
            continue
        good.append((message, one))
    if not good:
        return None
    try:
        gas = adapter.simulate_delivery(chain.gateway_address, [s for _, s in good], relayer)
    except SimulationError:
        return None  # the chain moved between the simulations; the next round tries again
    return [m for m, _ in good], gas


def _chain_level(exc: SimulationError) -> bool:
    return any(reason in (exc.reason or str(exc)) for reason in CHAIN_LEVEL_REVERTS)


def _fail(session: Session, message: Message, error: str, settings: Settings) -> None:
    lifecycle(session, message).fail(error, backoff_policy(settings))
    log.warning("delivery attempt failed", extra={"message_id": message.id, "error": error})


def next_nonce(session: Session, chain: Chain, adapter: ChainAdapter, relayer: str) -> int:
    """The local nonce, resynced from the chain when the chain is ahead of it."""
    local = session.scalar(
        select(func.max(Delivery.tx_nonce)).where(
            Delivery.dst_chain_id == chain.chain_id,
            Delivery.relayer == relayer,
            or_(Delivery.status.in_(OPEN_DELIVERY_TX), Delivery.status == DeliveryTxStatus.MINED),
        )
    )
    on_chain = adapter.account_nonce(relayer)
    return max(on_chain, (local + 1) if local is not None else 0)


def _sign(
    session: Session,
    chain: Chain,
    adapter: ChainAdapter,
    batch: list[Message],
    relayer: str,
    key: str,
    gas: int,
    fee: FeeQuote,
) -> SignedTx:
    signed = signed_batch(session, chain, batch)
    nonce = next_nonce(session, chain, adapter, relayer)
    return adapter.sign_delivery(chain.gateway_address, signed, key, nonce, fee, gas)


def signed_batch(session: Session, chain: Chain, messages: list[Message]) -> list[SignedMessage]:
    """The messages with the signatures the destination gateway checks."""
    signatures = signatures_for(session, messages, chain)
    return [SignedMessage(wire_message(m), signatures[m.id]) for m in messages]


def delivery_row(tx: SignedTx, dst_chain_id: int, message_ids: list[str]) -> Delivery:
    """The record of a signed delivery transaction, kept before it is sent."""
    return Delivery(
        dst_chain_id=dst_chain_id,
        relayer=tx.sender,
        tx_nonce=tx.nonce,
        tx_hash=tx.tx_hash,
        raw_tx=tx.raw,
        gas=tx.gas,
        max_fee=str(tx.fee.max_fee_per_gas),
        priority_fee=str(tx.fee.max_priority_fee_per_gas),
        message_ids=message_ids,
        status=DeliveryTxStatus.PENDING,
    )


def _record(session: Session, chain: Chain, tx: SignedTx, batch: list[Message]) -> None:
    session.add(delivery_row(tx, chain.chain_id, [m.id for m in batch]))
    for message in sorted(batch, key=lambda m: m.id):  # the one row order of every writer
        lifecycle(session, message).submit(tx.tx_hash, tx.nonce)


def _send(
    chain_name: str,
    adapter: Submitter,
    tx: SignedTx,
    report: DeliverReport,
    message_ids: list[str],
) -> None:
    """Broadcast; a failure here is left to confirm, which resends the recorded bytes."""
    try:
        adapter.send_raw(tx.raw)
    except AdapterError as exc:
        log.warning("send failed; confirm will resend", extra={"tx": tx.tx_hash, "error": str(exc)})
        report.note = f"send failed: {exc}"
        return
    report.sent, report.tx_hash = len(message_ids), tx.tx_hash
    log.info(
        "delivery sent",
        extra={"chain": chain_name, "tx": tx.tx_hash, "message_ids": message_ids},
    )
