"""Confirm: follow each delivery transaction to its receipt; settle what it did; resend the
recorded bytes while it waits; replace it with a higher fee when stuck, up to a cap."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from adapters.base import (
    AdapterError,
    ChainAdapter,
    DeliveryStatus,
    FeeQuote,
    NonceTooLowError,
    Receipt,
    SimulationError,
    Submitter,
)
from hub.db.models import Chain, Delivery, Message, utcnow
from hub.domain.states import OPEN_DELIVERY_TX, AlertKind, DeliveryTxStatus, MessageState
from hub.services import alerts
from hub.services.messages import backoff_policy, lifecycle
from hub.services.relay.deliver import delivery_row, signed_batch
from hub.services.relay.outcomes import mark_all_delivered
from hub.services.relay.ports import Ports
from hub.settings import Settings

log = logging.getLogger("hub.relay.confirm")
_S = MessageState
GWEI = 10**9


@dataclass
class ConfirmReport:
    chain: str
    mined: int = 0
    resent: int = 0
    replaced: int = 0
    dropped: int = 0

    @property
    def busy(self) -> bool:
        """Whether this step changed anything worth a log event."""
        return bool(self.mined or self.replaced or self.dropped)


def confirm(session: Session, chain: Chain, ports: Ports) -> ConfirmReport:
    """The confirm stage on one destination chain: follow the relayer's open transactions."""
    report = ConfirmReport(chain.name)
    key = ports.key("relayer")
    relayer = str(Account.from_key(key).address)
    adapter = ports.adapter(chain)
    groups = _open_by_nonce(session, chain, relayer)
    if not groups:
        return report
    chain_nonce = adapter.account_nonce(relayer)
    for nonce, txs in sorted(groups.items()):
        _follow(ports.settings, session, chain, adapter, txs, nonce < chain_nonce, key, report)
    return report


def _open_by_nonce(session: Session, chain: Chain, relayer: str) -> dict[int, list[Delivery]]:
    groups: dict[int, list[Delivery]] = defaultdict(list)
    rows = session.scalars(
        select(Delivery)
        .where(
            Delivery.dst_chain_id == chain.chain_id,
            Delivery.relayer == relayer,
            Delivery.status.in_(OPEN_DELIVERY_TX),
        )
        .order_by(Delivery.tx_nonce, Delivery.id)
    )
    for row in rows:
        groups[row.tx_nonce].append(row)
    return groups


def _follow(
    settings: Settings,
    session: Session,
    chain: Chain,
    adapter: ChainAdapter,
    txs: list[Delivery],
    nonce_used: bool,
    key: str,
    report: ConfirmReport,
) -> None:
    """One nonce: the transaction that was mined settles it; else resend, replace or drop."""
    for tx in txs:
        receipt = adapter.receipt(tx.tx_hash)
        if receipt is not None:
            settle(settings, session, chain, adapter, tx, receipt)
            for other in txs:
                alerts.resolve(session, AlertKind.STUCK_TX, f"tx:{other.tx_hash}")
                if other is not tx:
                    other.status = DeliveryTxStatus.REPLACED
            report.mined += 1
            return
    if nonce_used:
        _dropped(settings, session, txs)
        report.dropped += 1
        return
    newest = txs[-1]
    if utcnow() - newest.sent_at > timedelta(seconds=settings.stuck_after_seconds):
        if _replace(settings, session, chain, adapter, newest, key):
            report.replaced += 1
        return
    _resend(adapter, newest)
    report.resent += 1


def settle(
    settings: Settings,
    session: Session,
    chain: Chain,
    adapter: ChainAdapter,
    tx: Delivery,
    receipt: Receipt,
) -> None:
    """Apply a mined delivery: each message's own outcome, or a failed attempt for all when
    the whole transaction reverted."""
    tx.status = DeliveryTxStatus.MINED if receipt.success else DeliveryTxStatus.REVERTED
    tx.block_number = receipt.block_number
    messages = _messages(session, tx.message_ids)
    if not receipt.success:
        _reverted(settings, session, chain, adapter, tx, messages)
        return
    found = adapter.delivery_outcomes(
        chain.gateway_address, receipt.block_number, receipt.block_number
    )
    mine = [o for o in found if o.tx_hash == tx.tx_hash]
    mark_all_delivered(session, mine)
    by_id = {"0x" + o.message_id.hex(): o for o in mine}
    for message in messages:
        outcome = by_id.get(message.id)
        # Skipped: delivered or returned by another transaction, which the scan reads (and
        # settles the message by) in its own block.
        if outcome is None or outcome.status in (DeliveryStatus.SKIPPED, DeliveryStatus.DELIVERED):
            continue
        if message.state == _S.SUBMITTED:
            _fail(settings, session, message, f"recipient reverted: {outcome.reason}")


def _reverted(
    settings: Settings,
    session: Session,
    chain: Chain,
    adapter: ChainAdapter,
    tx: Delivery,
    messages: list[Message],
) -> None:
    """A whole delivery transaction reverted. Only the messages that revert on their own are
    charged an attempt; the others go back in line, so one bad message cannot get innocent
    ones parked."""
    waiting = [m for m in messages if m.state == _S.SUBMITTED]
    error = f"delivery transaction {tx.tx_hash} reverted"
    if len(waiting) == 1:
        _fail(settings, session, waiting[0], error)
        return
    for message, one in zip(waiting, signed_batch(session, chain, waiting), strict=True):
        try:
            adapter.simulate_delivery(chain.gateway_address, [one], tx.relayer)
        except SimulationError as exc:
            _fail(settings, session, message, f"{error}; alone it reverts: {exc.reason or exc}")
            continue
        lifecycle(session, message).requeue(f"{error} with others; back in line")


def _fail(settings: Settings, session: Session, message: Message, error: str) -> None:
    lifecycle(session, message).fail(error, backoff_policy(settings))


def _messages(session: Session, ids: list[str]) -> list[Message]:
    """In id order, the one order every writer of message rows uses (no deadlocks)."""
    query = select(Message).where(Message.id.in_(ids)).order_by(Message.id)
    return list(session.scalars(query.options(lazyload("*"))))


def _dropped(settings: Settings, session: Session, txs: list[Delivery]) -> None:
    """The nonce was used by a transaction we did not record: ours will never be mined."""
    for tx in txs:
        tx.status = DeliveryTxStatus.DROPPED
    for message in _messages(session, txs[-1].message_ids):
        if message.state == _S.SUBMITTED:
            lifecycle(session, message).requeue(f"{txs[-1].tx_hash} was dropped")
    log.warning(
        "delivery dropped", extra={"tx": txs[-1].tx_hash, "message_ids": txs[-1].message_ids}
    )


def _resend(adapter: Submitter, tx: Delivery) -> None:
    """Send the recorded bytes again: a node that lost it (or never got it) gets it now."""
    try:
        adapter.send_raw(tx.raw_tx)
    except NonceTooLowError:
        pass  # mined or replaced: the next round sees the receipt or the used nonce
    except AdapterError as exc:
        log.info("resend refused", extra={"tx": tx.tx_hash, "error": str(exc)})


def _replace(
    settings: Settings,
    session: Session,
    chain: Chain,
    adapter: ChainAdapter,
    tx: Delivery,
    key: str,
) -> bool:
    """The same messages, the same nonce, a higher fee; an alert once the cap is reached."""
    old = FeeQuote(int(tx.max_fee), int(tx.priority_fee))
    fee = old.bumped(settings.fee_bump_percent)
    quote = adapter.fee_quote()
    fee = FeeQuote(
        max(fee.max_fee_per_gas, quote.max_fee_per_gas),
        max(fee.max_priority_fee_per_gas, quote.max_priority_fee_per_gas),
    )
    if fee.max_fee_per_gas > settings.max_fee_cap_gwei * GWEI:
        alerts.raise_alert(
            session,
            AlertKind.STUCK_TX,
            f"tx:{tx.tx_hash}",
            f"delivery {tx.tx_hash} on {chain.name} (nonce {tx.tx_nonce}) is stuck at the fee cap",
        )
        _resend(adapter, tx)
        return False
    messages = _messages(session, tx.message_ids)
    signed = signed_batch(session, chain, messages)
    new = adapter.sign_delivery(chain.gateway_address, signed, key, tx.tx_nonce, fee, tx.gas)
    tx.status = DeliveryTxStatus.SUPERSEDED
    session.add(delivery_row(new, tx.dst_chain_id, tx.message_ids))
    for message in messages:
        lifecycle(session, message).resubmit(new.tx_hash)
    # Not sent here: the next round sends it, once this row is committed (crash-safe).
    log.warning(
        "delivery replaced",
        extra={"old": tx.tx_hash, "new": new.tx_hash, "message_ids": tx.message_ids},
    )
    return True
