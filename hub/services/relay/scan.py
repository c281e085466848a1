"""Scan: read a chain's gateway logs up to its head, record messages and deliveries, promote
messages whose block is final and still canonical, orphan those reorged out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, lazyload

from adapters.base import (
    BlockRef,
    BridgeOperator,
    ChainAdapter,
    ChainReader,
    DeliveryOutcome,
    DeliveryStatus,
    FinalityPolicy,
    ObservedMessage,
)
from hub.db.models import (
    Asset,
    Chain,
    Cursor,
    Message,
    MessageEvent,
    Route,
    Transfer,
    ValidatorSet,
    utcnow,
)
from hub.domain.states import AlertKind, ChainStatus, MessageState, StatusBy
from hub.domain.transfers import decode_transfer
from hub.services import alerts
from hub.services.messages import lifecycle, lifecycles
from hub.services.relay import outcomes
from hub.services.relay.attestations import refresh_validator_set
from hub.services.relay.ports import Ports

log = logging.getLogger("hub.relay.scan")
VALIDATOR_SET_MAX_AGE = timedelta(seconds=10)


@dataclass
class ScanReport:
    chain: str
    from_block: int = 0
    to_block: int = 0
    observed: int = 0
    finalized: int = 0
    orphaned: int = 0
    delivered: int = 0
    reorg: str | None = None
    deep_reorg: bool = False
    notes: list[str] = field(default_factory=list)
    # what the chain showed this step, for metrics (head and cursor lag)
    head: int | None = None
    final_block: int | None = None
    cursor_block: int | None = None

    @property
    def busy(self) -> bool:
        """Whether this step changed anything worth a log event."""
        return bool(
            self.observed or self.finalized or self.orphaned or self.delivered or self.reorg
        )


def scan(session: Session, chain: Chain, ports: Ports) -> ScanReport:
    """The scan stage on one chain (one scanner per chain: the runner holds its lease). The
    chain's validator set is read here too, when it is older than VALIDATOR_SET_MAX_AGE."""
    adapter = ports.adapter(chain)
    vset = session.get(ValidatorSet, chain.id)
    if vset is None or utcnow() - vset.updated_at > VALIDATOR_SET_MAX_AGE:
        refresh_validator_set(session, chain, adapter)
    return scan_chain(session, chain, adapter, ports.settings.scan_range)


def scan_chain(session: Session, chain: Chain, adapter: ChainAdapter, max_range: int) -> ScanReport:
    """One bounded step of scanning; call again until `to_block` reaches the head."""
    report = ScanReport(chain.name)
    if chain.status != ChainStatus.ACTIVE:
        return report
    head = adapter.head()
    final = adapter.finalized_block(FinalityPolicy.parse(chain.finality))
    report.head, report.final_block = head.number, final.number
    cursor = _cursor(session, chain, final)
    if not _canonical(session, chain, adapter, cursor, report):
        return report
    span = min(max_range, _span_hint.get(chain.id, max_range))
    start, end = cursor.block_number + 1, min(head.number, cursor.block_number + span)
    seen: dict[int, str] = {}
    if start <= end:
        end_hash = adapter.block_hash(end)
        found = adapter.messages(chain.gateway_address, start, end)
        delivered = adapter.delivery_outcomes(chain.gateway_address, start, end)
        if end_hash is None or adapter.block_hash(end) != end_hash:
            report.notes.append("the chain moved under the scan; trying again")
            return report
        read_to = end
        found, delivered, end, end_hash = _bounded(found, delivered, end, end_hash)
        _span_hint[chain.id] = end - start + 1 if end < read_to else min(max_range, 2 * span)
        report.observed = record_observed(session, chain, found)
        report.delivered = apply_inbox(session, chain, delivered)
        link_returns(session, chain, adapter, delivered)
        cursor.block_number, cursor.block_hash = end, end_hash
        report.from_block, report.to_block = start, end
        # Canonical now: the logs came between two reads of the same hash at `end`.
        seen = {item.block_number: item.block_hash for item in found}
    promote(session, chain, adapter, final, report, seen)
    cursor.final_block, cursor.final_hash = final.number, final.hash
    report.cursor_block = cursor.block_number
    return report


# Most messages one scan step records (one transaction): a backlog (a chain joining with
# many messages) goes in steps of this size, whole blocks each.
STEP_MESSAGES = 5_000
# Blocks to read next, per chain id (per process): shrunk after a step that held more than
# STEP_MESSAGES, so the rest is not read and decoded again and again; grows back after.
_span_hint: dict[int, int] = {}


def _bounded(
    found: list[ObservedMessage], delivered: list[DeliveryOutcome], end: int, end_hash: str
) -> tuple[list[ObservedMessage], list[DeliveryOutcome], int, str]:
    """What a step records: up to the block holding the STEP_MESSAGES-th message (its hash
    from its logs, read within the same bracket as `end`'s), or everything."""
    if len(found) <= STEP_MESSAGES:
        return found, delivered, end, end_hash
    found = sorted(found, key=lambda m: (m.block_number, m.log_index))
    last = found[STEP_MESSAGES - 1]
    if last.block_number >= end:
        return found, delivered, end, end_hash
    kept = [m for m in found if m.block_number <= last.block_number]
    settled = [d for d in delivered if d.block_number <= last.block_number]
    return kept, settled, last.block_number, last.block_hash


def _cursor(session: Session, chain: Chain, final: BlockRef) -> Cursor:
    cursor = session.get(Cursor, chain.id)
    if cursor is None:  # registered before cursors existed: start at the final block
        cursor = Cursor(
            chain_key=chain.id,
            start_block=final.number,
            block_number=final.number,
            block_hash=final.hash,
            final_block=final.number,
            final_hash=final.hash,
        )
        session.add(cursor)
    return cursor


def _canonical(
    session: Session,
    chain: Chain,
    adapter: ChainReader,
    cursor: Cursor,
    report: ScanReport,
) -> bool:
    """A changed hash at the last final block is a deep reorg (the chain broke its finality
    promise): pause the chain and alert. A changed hash at the cursor above it is a shallow
    one: rewind to the last final block and scan again. A block the endpoints do not have is
    neither: they are behind the chain (the next scan tries again)."""
    final_hash = adapter.block_hash(cursor.final_block) if cursor.final_hash else None
    cursor_hash = adapter.block_hash(cursor.block_number)
    if (cursor.final_hash and final_hash is None) or cursor_hash is None:
        report.notes.append(f"the endpoints are behind block {cursor.block_number}; waiting")
        return False
    if cursor.final_hash and final_hash != cursor.final_hash:
        _deep_reorg(session, chain, adapter, cursor, report)
        return False
    if cursor_hash == cursor.block_hash:
        return True
    report.reorg = f"reorg above finality at block {cursor.block_number}; rescanning"
    cursor.block_number = cursor.final_block
    cursor.block_hash = cursor.final_hash or cursor.block_hash
    return True


def _deep_reorg(
    session: Session, chain: Chain, adapter: ChainReader, cursor: Cursor, report: ScanReport
) -> None:
    dropped = _orphan_dropped(session, chain, adapter)
    reason = (
        f"deep reorg on {chain.name}: final block {cursor.final_block} was "
        f"{cursor.final_hash} and is no longer canonical; relaying from it is paused"
        f" ({dropped} undelivered message(s) from dropped blocks orphaned)"
    )
    chain.status, chain.status_reason, chain.status_by = (
        ChainStatus.PAUSED,
        reason,
        StatusBy.SCANNER,
    )
    alerts.raise_alert(session, AlertKind.DEEP_REORG, f"chain:{chain.name}", reason)
    report.reorg, report.deep_reorg = reason, True
    report.orphaned += dropped
    log.error("deep reorg", extra={"chain": chain.name, "block": cursor.final_block})


# Not yet on their way to the destination: a deep reorg can still stop these.
_UNSENT = (
    MessageState.OBSERVED,
    MessageState.FINALIZED,
    MessageState.ATTESTED,
    MessageState.FAILED,
    MessageState.REJECTED,
)


def _orphan_dropped(session: Session, chain: Chain, adapter: ChainReader) -> int:
    """Orphan this chain's messages, final or not, that were not sent on yet and whose block
    the reorg replaced: nothing from a dropped block is relayed, whatever was signed for it."""
    waiting = list(
        session.scalars(
            select(Message)
            .where(
                Message.src_chain_id == chain.chain_id,
                Message.state.in_([s.value for s in _UNSENT]),
            )
            .order_by(Message.id)
        )
    )
    hashes = {n: adapter.block_hash(n) for n in {m.src_block_number for m in waiting}}
    dropped = [m for m in waiting if hashes[m.src_block_number] not in (None, m.src_block_hash)]
    for message in dropped:
        detail = f"block {message.src_block_number} was dropped by a deep reorg of {chain.name}"
        lifecycle(session, message).orphan(detail)
    return len(dropped)


def record_observed(session: Session, chain: Chain, found: list[ObservedMessage]) -> int:
    """Insert messages not seen before (the id is the key), all in one flush; refresh where
    a reorg moved one."""
    ids = ["0x" + item.id.hex() for item in found]
    query = select(Message).where(Message.id.in_(ids)).options(lazyload("*"))
    known = {m.id: m for m in session.scalars(query)}
    fresh: dict[str, ObservedMessage] = {}
    for message_id, item in zip(ids, found, strict=True):
        existing = known.get(message_id)
        if existing is None:
            fresh.setdefault(message_id, item)
        elif existing.state == MessageState.OBSERVED and existing.src_block_hash != item.block_hash:
            existing.src_block_number, existing.src_block_hash = item.block_number, item.block_hash
            existing.src_tx_hash, existing.src_log_index = item.tx_hash, item.log_index
    if not fresh:
        return 0
    try:
        with session.begin_nested():
            _insert_all(session, chain, fresh)
    except IntegrityError:  # another scanner inserted some first: one by one, then
        return sum(_insert(session, chain, i, item) for i, item in fresh.items())
    return len(fresh)


def _insert_all(session: Session, chain: Chain, fresh: dict[str, ObservedMessage]) -> None:
    session.add_all(_new_message(i, item) for i, item in fresh.items())
    session.flush()
    assets: dict[tuple[int, str], int | None] = {}
    for message_id, item in fresh.items():
        _record_transfer(session, chain, message_id, item, assets)


def _insert(session: Session, chain: Chain, message_id: str, item: ObservedMessage) -> int:
    """Insert a message and its transfer; 0 when another scanner inserted it first."""
    try:
        with session.begin_nested():
            session.add(_new_message(message_id, item))
            session.flush()
            _record_transfer(session, chain, message_id, item)
    except IntegrityError:
        return 0
    return 1


def _new_message(message_id: str, item: ObservedMessage) -> Message:
    m = item.message
    message = Message(
        id=message_id,
        version=m.version,
        src_chain_id=m.src_chain_id,
        src_gateway=m.src_gateway,
        dst_chain_id=m.dst_chain_id,
        nonce=m.nonce,
        sender=m.sender,
        recipient=m.recipient,
        gas_limit=m.gas_limit,
        payload=m.payload,
        state=MessageState.OBSERVED.value,
        src_block_number=item.block_number,
        src_block_hash=item.block_hash,
        src_tx_hash=item.tx_hash,
        src_log_index=item.log_index,
    )
    message.events = [MessageEvent(state=MessageState.OBSERVED.value)]
    return message


def _record_transfer(
    session: Session,
    chain: Chain,
    message_id: str,
    item: ObservedMessage,
    assets: dict[tuple[int, str], int | None] | None = None,
) -> None:
    """A message the chain's bridge sent is a token transfer: decode and keep it."""
    if item.message.sender != chain.bridge_address:
        return
    payload = decode_transfer(item.message.payload)
    if payload is None:
        return
    assets = {} if assets is None else assets
    home = (payload.home_chain_id, payload.home_token)
    if home not in assets:  # read once per scan step, not per transfer
        assets[home] = session.scalar(
            select(Asset.id)
            .join(Chain, Asset.home_chain_key == Chain.id)
            .where(Chain.chain_id == payload.home_chain_id, Asset.home_token == payload.home_token)
        )
    asset_id = assets[home]
    session.add(
        Transfer(
            message_id=message_id,
            asset_id=asset_id,
            home_chain_id=payload.home_chain_id,
            home_token=payload.home_token,
            sender=payload.sender,
            recipient=payload.recipient,
            amount=str(payload.amount),
        )
    )


def apply_inbox(session: Session, chain: Chain, found: list[DeliveryOutcome]) -> int:
    """Deliveries (and returns) the gateway reports, ours or anyone's: they settle the
    message."""
    # One order for every writer of message rows (by id), so writers never deadlock.
    settled = outcomes.mark_all_delivered(session, found)
    for outcome in sorted(found, key=lambda o: o.message_id):
        if outcome.status is DeliveryStatus.CONSUMED:
            settled += outcomes.mark_returned(session, outcome)
    return settled


def link_returns(
    session: Session, chain: Chain, adapter: ChainAdapter, inbox: list[DeliveryOutcome]
) -> None:
    """A bridge returns a transfer in one transaction: the gateway marks the original
    consumed, and the bridge sends the tokens back in a new message and says which
    (`TransferReturned`). That message's transfer names the one it returns: the supply watch
    counts the original in flight until its return lands. Read only where something was
    consumed, so a scan without returns costs nothing more."""
    blocks = [o.block_number for o in inbox if o.status is DeliveryStatus.CONSUMED]
    if not blocks or not isinstance(adapter, BridgeOperator):
        return
    for item in adapter.returns(chain.bridge_address, min(blocks), max(blocks)):
        transfer = session.get(Transfer, "0x" + item.return_id.hex())
        if transfer is not None:
            transfer.returns_message_id = "0x" + item.original_id.hex()


def promote(
    session: Session,
    chain: Chain,
    adapter: ChainReader,
    final: BlockRef,
    report: ScanReport,
    seen: dict[int, str] | None = None,
) -> None:
    """Observed messages at or below the final block: finalized if their block is canonical,
    orphaned if a reorg replaced it; a final message with no route to its destination is
    rejected (an operator retries it once the route exists). `seen`: block hashes this scan
    step just read as canonical; only other blocks are asked for again."""
    waiting = list(
        session.scalars(
            select(Message)
            .where(
                Message.src_chain_id == chain.chain_id,
                Message.state == MessageState.OBSERVED.value,
                Message.src_block_number <= final.number,
            )
            .order_by(Message.id)
            .options(lazyload("*"))
        )
    )
    hashes: dict[int, str | None] = dict(seen or {})
    for number in {m.src_block_number for m in waiting} - hashes.keys():
        hashes[number] = adapter.block_hash(number)
    # an endpoint behind the chain (no hash): neither final nor orphaned yet
    known = [m for m in waiting if hashes[m.src_block_number] is not None]
    replaced = [m for m in known if hashes[m.src_block_number] != m.src_block_hash]
    canonical = [m for m in known if hashes[m.src_block_number] == m.src_block_hash]
    report.orphaned += len(
        lifecycles(session, replaced).move(
            lambda life, m: life.orphan(
                f"block {m.src_block_number} was replaced by a reorg before finality"
            )
        )
    )
    detail = f"final at block {final.number}"
    finalized = lifecycles(session, canonical).move(lambda life, _m: life.finalize(detail))
    report.finalized += len(finalized)
    _reject_unroutable(session, chain, finalized)


def _reject_unroutable(session: Session, chain: Chain, finalized: list[Message]) -> None:
    routed, retired = routed_destinations(session, chain), retired_chains(session)
    for message in finalized:
        reason = _unroutable(chain, message, routed, retired)
        if reason is not None:
            lifecycle(session, message).reject(reason)


def _unroutable(
    chain: Chain, message: Message, routed: dict[int, int], retired: dict[int, str]
) -> str | None:
    """Why a final message cannot be relayed (an operator may retry it once that changed)."""
    if message.dst_chain_id not in routed:
        return retired.get(message.dst_chain_id) or (
            f"no route from {chain.name} to chain id {message.dst_chain_id}"
        )
    cap = routed[message.dst_chain_id]
    if message.gas_limit > cap:
        return f"asks for {message.gas_limit} gas; the route allows at most {cap} per message"
    return None


def retired_chains(session: Session) -> dict[int, str]:
    """Chain id -> why messages to it are rejected."""
    query = select(Chain).where(Chain.status == ChainStatus.RETIRED)
    return {c.chain_id: f"chain {c.name} is retired" for c in session.scalars(query)}


def routed_destinations(session: Session, chain: Chain) -> dict[int, int]:
    """Chain id -> the route's gas cap per message, for every chain this chain has a route to
    (paused or not: a paused route makes messages wait, a missing one, or one to a retired
    chain, rejects them)."""
    dst = aliased(Chain)
    query = (
        select(dst.chain_id, Route.max_gas)
        .join(Route, Route.dst_chain_key == dst.id)
        .where(Route.src_chain_key == chain.id, dst.status != ChainStatus.RETIRED)
    )
    return {int(chain_id): int(cap) for chain_id, cap in session.execute(query)}
