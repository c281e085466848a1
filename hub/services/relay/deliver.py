"""Deliver: per destination chain and relayer key, one submitter at a time batches attested
messages, simulates, signs, records the transaction, and only then sends it.

Recording before sending is what makes a crash harmless: a transaction the database knows
is sent again unchanged (same nonce, same bytes) by confirm, never rebuilt, and the gateway
skips any id already delivered.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from eth_account import Account
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, lazyload

from adapters.base import (
    AdapterError,
    ChainAdapter,
    SignedMessage,
    SignedTx,
    SimulationError,
)
from adapters.base import (
    Message as WireMessage,
)
from hub.db.models import (
    Asset,
    Chain,
    Delivery,
    Message,
    Route,
    Transfer,
    ValidatorSet,
    utcnow,
)
from hub.domain.states import AssetStatus, ChainStatus, MessageState, RouteStatus
from hub.services.messages import transition_many
from hub.services.relay import funds, leases
from hub.services.relay.attestations import (
    promote_signed,
    refresh_validator_set,
    signatures_for,
)
from hub.services.relay.context import RelayContext
from hub.services.relay.outcomes import fail_attempt

log = logging.getLogger("hub.relay.deliver")
_S = MessageState
OPEN_TX = ("pending", "superseded")


def owner() -> str:
    """Who holds a lease: this process (read at call time: prefork children differ)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DeliverReport:
    chain: str
    sent: int = 0
    tx_hash: str | None = None
    dropped: int = 0
    note: str | None = None

    @property
    def busy(self) -> bool:
        """Whether this step changed anything worth a log event."""
        return bool(self.sent)


def lease_name(chain: Chain, relayer: str) -> str:
    return f"deliver:{chain.chain_id}:{relayer.lower()}"


STEP_SECONDS = 2.0


def deliver_ready(ctx: RelayContext, chain_name: str, relayer_key: str) -> DeliverReport:
    """Delivery rounds for a destination chain, one transaction each, while full batches
    are waiting and the in-flight limit allows (pipelined nonces); a no-op while another
    process holds the lease."""
    relayer = str(Account.from_key(relayer_key).address)
    report = DeliverReport(chain_name)
    with ctx.transaction() as session:
        chain = session.scalar(select(Chain).where(Chain.name == chain_name))
        if chain is None or chain.status != ChainStatus.ACTIVE:
            return report
        lease = lease_name(chain, relayer)
        if not leases.acquire(session, lease, owner(), ctx.settings.lease_seconds):
            report.note = "another submitter holds the lease"
            return report
        _refresh_if_old(session, chain, ctx.adapter(chain))
    # Bounded in time too: the step hands its worker back (and is sent again at once when it
    # did work), so scans and the other chains' steps are not kept waiting behind it.
    deadline = time.monotonic() + STEP_SECONDS
    try:
        for _ in range(ctx.settings.max_in_flight):
            if not _round(ctx, chain_name, relayer, relayer_key, report):
                break
            if time.monotonic() > deadline:
                break
    finally:
        with ctx.transaction() as session:
            leases.release(session, lease, owner())
    return report


def _round(
    ctx: RelayContext, chain_name: str, relayer: str, key: str, report: DeliverReport
) -> bool:
    """One batch signed, recorded and sent; True when a full one went and more may wait."""
    settings = ctx.settings
    with ctx.transaction() as session:
        chain = session.scalar(select(Chain).where(Chain.name == chain_name))
        assert chain is not None
        lease = lease_name(chain, relayer)
        if not leases.acquire(session, lease, owner(), settings.lease_seconds):  # renewed
            report.note = "the lease ran out"
            return False
        adapter = ctx.adapter(chain)
        promote_signed(session, chain)
        if _in_flight(session, chain, relayer) >= settings.max_in_flight:
            report.note = "in-flight limit reached"
            return False
        batch = pick_batch(session, chain, settings.batch_size)
        if not batch:
            return False
        full = len(batch) >= settings.batch_size
        simulated = _simulated(session, chain, adapter, batch, relayer, ctx)
        if simulated is None:
            return False
        batch, signed, gas = simulated
        fee = adapter.fee_quote()
        if not funds.can_pay(session, chain, adapter, relayer, gas * fee.max_fee_per_gas):
            report.note = "the relayer cannot pay for a delivery"
            return False
        nonce = next_nonce(session, chain, adapter, relayer)
        tx = adapter.sign_delivery(chain.gateway_address, signed, key, nonce, fee, gas)
        _record(session, chain, tx, batch)
    # A full batch (even one partly set aside) says more may wait: go on at once.
    return _send(ctx, chain_name, adapter, tx, report, [m.id for m in batch]) and full


def _in_flight(session: Session, chain: Chain, relayer: str) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Delivery.tx_nonce))).where(
                Delivery.dst_chain_id == chain.chain_id,
                Delivery.relayer == relayer,
                Delivery.status.in_(OPEN_TX),
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
        .join(Route, and_(Route.src_chain_id == src.c.id, Route.dst_chain_id == chain.id))
        .where(
            Message.dst_chain_id == chain.chain_id,
            Route.status == RouteStatus.ACTIVE,
            Message.gas_limit <= Route.max_gas,
            src.c.status == ChainStatus.ACTIVE,
            ~paused_asset.exists(),
            ~returning.exists(),
        )
        .order_by(Message.created_at, Message.id)
        .options(lazyload("*"))
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
    ctx: RelayContext,
) -> tuple[list[Message], list[SignedMessage], int] | None:
    """The batch (or the first part of it that goes through) and its gas. When the batch
    reverts, it is halved until each part simulates: a message that reverts alone is set
    aside (failed, with its reason and a backoff) and the others go on, so one message that
    cannot be delivered never holds up the others. Halving also finds a part that fits the
    gas a transaction may use, in a few simulations rather than one per message."""
    signed = signed_batch(session, chain, batch)
    message_of = {id(one): m for one, m in zip(signed, batch, strict=True)}
    try:
        parts = _passing(chain, adapter, signed, relayer)
        whole = len(parts) == 1 and not isinstance(parts[0][1], SimulationError)
        if not whole and _epoch_moved(session, chain, adapter):
            return None  # signed for a set that is gone: the messages wait for new signatures
    except SimulationError as exc:  # the chain refused, or it moved between simulations
        log.warning("delivery blocked", extra={"chain": chain.name, "reason": exc.reason})
        return None
    good: tuple[list[Message], list[SignedMessage], int] | None = None
    for part, outcome in parts:
        if isinstance(outcome, SimulationError):
            _fail(session, message_of[id(part[0])], _why(outcome), ctx)
        elif good is None:
            good = [message_of[id(one)] for one in part], part, outcome
    return good


Simulated = list[tuple[list[SignedMessage], int | SimulationError]]


def _passing(
    chain: Chain, adapter: ChainAdapter, part: list[SignedMessage], relayer: str
) -> Simulated:
    """Each part of `part` with its gas, or (alone) with the revert it meets; a chain-level
    revert (a pause) is raised: it says nothing about the messages."""
    try:
        return [(part, adapter.simulate_delivery(chain.gateway_address, part, relayer))]
    except SimulationError as exc:
        if _chain_level(exc):
            raise
        if len(part) == 1:
            return [(part, exc)]
    half = len(part) // 2
    return _passing(chain, adapter, part[:half], relayer) + _passing(
        chain, adapter, part[half:], relayer
    )


# The destination's validator set is read again when this old, and before a batch that does
# not simulate charges any message: signatures of a replaced set must never count as the
# messages' fault.
SET_MAX_AGE = timedelta(seconds=2)


def _refresh_if_old(session: Session, chain: Chain, adapter: ChainAdapter) -> None:
    vset = session.get(ValidatorSet, chain.id)
    if vset is None or utcnow() - vset.updated_at > SET_MAX_AGE:
        refresh_validator_set(session, chain, adapter)


def _epoch_moved(session: Session, chain: Chain, adapter: ChainAdapter) -> bool:
    vset = session.get(ValidatorSet, chain.id)
    before = vset.epoch if vset is not None else None
    return refresh_validator_set(session, chain, adapter).epoch != before


def _why(exc: SimulationError) -> str:
    return f"simulation reverted: {exc.reason or exc}"


def _chain_level(exc: SimulationError) -> bool:
    return any(reason in (exc.reason or str(exc)) for reason in CHAIN_LEVEL_REVERTS)


def _fail(session: Session, message: Message, error: str, ctx: RelayContext) -> None:
    s = ctx.settings
    fail_attempt(session, message, error, s.max_attempts, s.retry_base_seconds)
    log.warning("delivery attempt failed", extra={"message_id": message.id, "error": error})


def next_nonce(session: Session, chain: Chain, adapter: ChainAdapter, relayer: str) -> int:
    """The local nonce, resynced from the chain when the chain is ahead of it."""
    local = session.scalar(
        select(func.max(Delivery.tx_nonce)).where(
            Delivery.dst_chain_id == chain.chain_id,
            Delivery.relayer == relayer,
            or_(Delivery.status.in_(OPEN_TX), Delivery.status == "mined"),
        )
    )
    on_chain = adapter.account_nonce(relayer)
    return max(on_chain, (local + 1) if local is not None else 0)


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
        status="pending",
    )


def _record(session: Session, chain: Chain, tx: SignedTx, batch: list[Message]) -> None:
    session.add(delivery_row(tx, chain.chain_id, [m.id for m in batch]))
    for message in sorted(batch, key=lambda m: m.id):  # the one row order of every writer
        message.dst_tx_hash = tx.tx_hash
    transition_many(session, batch, _S.SUBMITTED, f"in {tx.tx_hash} (nonce {tx.nonce})")


def _send(
    ctx: RelayContext,
    chain_name: str,
    adapter: ChainAdapter,
    tx: SignedTx,
    report: DeliverReport,
    message_ids: list[str],
) -> bool:
    """Broadcast; a failure here is left to confirm, which resends the recorded bytes."""
    try:
        adapter.send_raw(tx.raw)
    except AdapterError as exc:
        log.warning("send failed; confirm will resend", extra={"tx": tx.tx_hash, "error": str(exc)})
        report.note = f"send failed: {exc}"
        return False
    report.sent, report.tx_hash = report.sent + len(message_ids), tx.tx_hash
    log.info(
        "delivery sent",
        extra={"chain": chain_name, "tx": tx.tx_hash, "message_ids": message_ids},
    )
    return True
