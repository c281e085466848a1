"""Deliver: per destination chain and relayer key, one submitter at a time batches attested
messages, simulates, signs, records the transaction, and only then sends it.

Recording before sending is what makes a crash harmless: a transaction the database knows
is sent again unchanged (same nonce, same bytes) by confirm, never rebuilt, and the gateway
skips any id already delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from eth_account import Account
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, lazyload

from adapters.base import (
    AdapterError,
    ChainAdapter,
    SignedMessage,
    SignedTx,
    SimulationError,
    Submitter,
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
from hub.domain.states import (
    OPEN_DELIVERY_TX,
    AssetStatus,
    ChainStatus,
    DeliveryTxStatus,
    MessageState,
    RouteStatus,
)
from hub.services.messages import backoff_policy, lifecycle, lifecycles
from hub.services.relay import funds, leases
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
    after_commit: Callable[[], object] | None = field(default=None, repr=False, compare=False)

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


# A step hands its worker back after this many seconds of rounds (and runs again at once when
# it did work: the runner's `follow_ups`), so scans and other chains are not kept waiting.
STEP_SECONDS = 2.0

Send = Callable[[], bool]


def deliver(session: Session, chain: Chain, ports: Ports) -> DeliverReport:
    """The deliver stage on one destination chain: rounds that each pick, simulate, sign and
    record one batch (messages -> submitted), pipelined (up to `max_in_flight` transactions,
    consecutive nonces) while full batches wait, for at most STEP_SECONDS. A round's
    transaction is sent only once its record is committed: by the stage at the commit point
    before the next round, the last one by the runner (`after_commit`). A crash between
    record and send is harmless: confirm resends the bytes."""
    report = DeliverReport(chain.name)
    if chain.status != ChainStatus.ACTIVE:
        return report
    adapter = ports.adapter(chain)
    _refresh_if_old(session, chain, adapter)  # never sign for a stale epoch
    deadline = time.monotonic() + STEP_SECONDS
    send: Send | None = None
    for _ in range(ports.settings.max_in_flight):
        if send is not None:
            session.commit()  # a commit point: the last round's record, then its send
            if not send():
                return report
        send, more = _round(session, chain, ports, report)
        if not more or time.monotonic() > deadline:
            break
    if send is not None:
        report.after_commit = send
    return report


def _round(
    session: Session, chain: Chain, ports: Ports, report: DeliverReport
) -> tuple[Send | None, bool]:
    """One batch signed and recorded: how to send it, and whether more may wait (a full
    batch, even one partly set aside)."""
    key, settings = ports.key("relayer"), ports.settings
    relayer, adapter = relayer_address(key), ports.adapter(chain)
    if not _may_sign(session, chain, relayer, settings, report):
        return None, False
    batch = pick_batch(session, chain, settings.batch_size)
    if not batch:
        return None, False
    full = len(batch) >= settings.batch_size
    simulated = _simulated(session, chain, adapter, batch, relayer, settings)
    if simulated is None:
        return None, False
    batch, signed, gas = simulated
    fee = adapter.fee_quote()
    if not funds.can_pay(session, chain, adapter, relayer, gas * fee.max_fee_per_gas):
        report.note = "the relayer cannot pay for a delivery"
        return None, False
    nonce = next_nonce(session, chain, adapter, relayer)
    tx = adapter.sign_delivery(chain.gateway_address, signed, key, nonce, fee, gas)
    _record(session, chain, tx, batch)
    return partial(_send, chain.name, adapter, tx, report, [m.id for m in batch]), full


def _may_sign(
    session: Session, chain: Chain, relayer: str, settings: Settings, report: DeliverReport
) -> bool:
    """Whether a round may sign a batch: the chain still active (it may have been paused
    since the last round's commit), the lease still ours, room in flight."""
    if chain.status != ChainStatus.ACTIVE:
        return False
    if not _renewed(session, chain, relayer, settings):
        report.note = "the lease ran out"
        return False
    promote_signed(session, chain)
    if _in_flight(session, chain, relayer) >= settings.max_in_flight:
        report.note = "in-flight limit reached"
        return False
    return True


def _renewed(session: Session, chain: Chain, relayer: str, settings: Settings) -> bool:
    """The runner took the lease; each round renews it, and stops if another submitter took
    it meanwhile (two submitters would sign for the same nonces)."""
    name = lease_name(chain, relayer)
    return leases.acquire(session, name, leases.owner(), settings.lease_seconds)


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
    settings: Settings,
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
            _fail(session, message_of[id(part[0])], _why(outcome), settings)
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
    lifecycles(session, batch).move(lambda life, _m: life.submit(tx.tx_hash, tx.nonce))


def _send(
    chain_name: str,
    adapter: Submitter,
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
