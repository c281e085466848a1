"""A validator's work: for each final message the hub lists, re-read the source chain through
the validator's own endpoints and the gateway it trusts (its configuration, never the hub's
database), check the message is final and was emitted there, and sign it for the destination
gateway of its own configuration.

The hub's database only says what to look at; it cannot make a validator sign. A pause is
honoured (nothing is signed for a paused chain, route or asset), and a message a validator
refuses is set aside for it with a backoff, so it never hides the messages behind it.
A round checks a batch against logs read by block range and stores its signatures in one
short transaction that takes no message row but those it promotes."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Protocol

from eth_account import Account
from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session, aliased, lazyload

from adapters.base import ChainAdapter, GatewayConfig, ObservedMessage
from hub.db.models import (
    Asset,
    Attestation,
    AttestationRefusal,
    Chain,
    Message,
    Route,
    Transfer,
    ValidatorSet,
    utcnow,
)
from hub.domain.attestation import attestation_digest, sign_digest
from hub.domain.states import AssetStatus, ChainStatus, MessageState, RouteStatus
from hub.services.relay.attestations import record_attestations
from hub.services.relay.ports import Ports
from hub.services.relay.validator_config import ValidatorConfig, WatchedChain

log = logging.getLogger("hub.relay.validator")
REFUSAL_BACKOFF_MAX = 300.0  # the source shows something else than the hub says
TRANSIENT_BACKOFF_MAX = 30.0  # a chain that did not answer
NOT_FINAL_RETRY = 1.0
NOT_FINAL = "is not final yet"
PREFETCH_GAP = 64  # blocks between two messages' blocks before their logs are read apart


@dataclass(frozen=True)
class Validator:
    """A validator's identity and its own view of the chains; the key stays in memory."""

    private_key: str = field(repr=False)
    config: ValidatorConfig

    @cached_property
    def address(self) -> str:
        return str(Account.from_key(self.private_key).address)


@dataclass
class AttestReport:
    validator: str
    signed: int = 0
    refused: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.signed)


def attest(session: Session, validator: Validator, ports: Ports, limit: int = 500) -> AttestReport:
    """The attest stage of one validator: sign every final message it can check and has not
    signed. The source logs of the whole batch are read in a few block ranges, and the
    signatures and the refusals are each committed in one short transaction (commit points of
    this stage), so nothing is held while the chains are read. One message that cannot be
    checked (or a chain that cannot answer) never stops the rest."""
    me = validator.address
    report = AttestReport(me)
    query = unsigned(me, list(validator.config.chains), limit).options(lazyload("*"))
    work = list(session.scalars(query))
    session.expunge_all()
    session.commit()  # nothing is held while the chains are read
    view = OwnView(ports.chains, validator.config)
    view.prefetch(work)
    signed: dict[str, bytes] = {}
    refusals: list[tuple[str, str, float]] = []
    for message in work:
        try:
            outcome = _check_and_sign(view, validator, message)
        except Exception as exc:  # whatever it is, it concerns this message alone
            outcome = (f"could not check: {type(exc).__name__}: {exc}", TRANSIENT_BACKOFF_MAX)
        if isinstance(outcome, bytes):
            signed[message.id] = outcome
        else:
            refusals.append((message.id, *outcome))
    report.signed = _store(session, me, signed)
    report.refused = len(refusals)
    _refuse_all(session, me, refusals)
    return report


def _store(session: Session, me: str, signed: dict[str, bytes]) -> int:
    if not signed:
        return 0
    stored = record_attestations(session, signed, signed_here_by=me)
    session.commit()
    log.info("attested", extra={"count": stored, "validator": me})
    return stored


def _refuse_all(session: Session, me: str, refusals: list[tuple[str, str, float]]) -> None:
    """Set each message aside for this validator, with a backoff that doubles each time up to
    its cap (a block not final yet is looked at again within a second)."""
    if not refusals:
        return
    for message_id, reason, _cap in refusals:
        log.warning(
            "not attested", extra={"message_id": message_id, "validator": me, "reason": reason}
        )
    ids = [message_id for message_id, _, _ in refusals]
    found = session.scalars(
        select(AttestationRefusal).where(
            AttestationRefusal.message_id.in_(ids), AttestationRefusal.validator == me
        )
    )
    rows = {row.message_id: row for row in found}
    for message_id, reason, cap in sorted(refusals):
        _record_refusal(session, rows.get(message_id), message_id, me, reason[:1000], cap)
    session.commit()


def unsigned(me: str, watched: list[int], limit: int) -> Select[Message]:
    """Final messages between chains this validator watches, on an active route and asset,
    that it has neither signed for the current epoch nor refused recently (oldest first)."""
    src, dst = aliased(Chain), aliased(Chain)
    mine = select(Attestation.id).where(
        Attestation.message_id == Message.id,
        Attestation.validator == me,
        Attestation.epoch == ValidatorSet.epoch,
    )
    refused = select(AttestationRefusal.message_id).where(
        AttestationRefusal.message_id == Message.id,
        AttestationRefusal.validator == me,
        AttestationRefusal.retry_at > utcnow(),
    )
    paused_asset = (
        select(Transfer.message_id)
        .join(Asset, Transfer.asset_id == Asset.id)
        .where(Transfer.message_id == Message.id, Asset.status != AssetStatus.ACTIVE)
    )
    return (
        select(Message)
        .join(src, src.chain_id == Message.src_chain_id)
        .join(dst, dst.chain_id == Message.dst_chain_id)
        .join(Route, and_(Route.src_chain_key == src.id, Route.dst_chain_key == dst.id))
        .join(ValidatorSet, ValidatorSet.chain_key == dst.id)
        .where(
            Message.state == MessageState.FINALIZED.value,
            Message.src_chain_id.in_(watched),
            Message.dst_chain_id.in_(watched),
            src.status == ChainStatus.ACTIVE,
            dst.status == ChainStatus.ACTIVE,
            Route.status == RouteStatus.ACTIVE,
            Message.gas_limit <= Route.max_gas,
            ~paused_asset.exists(),
            ~mine.exists(),
            ~refused.exists(),
        )
        .order_by(Message.created_at, Message.id)
        .limit(limit)
    )


def _check_and_sign(
    view: OwnView, validator: Validator, message: Message
) -> bytes | tuple[str, float]:
    """The signature, or why not and how long to wait before looking again."""
    problem = view.problem(message)
    if problem is not None:
        return problem, NOT_FINAL_RETRY if problem.endswith(NOT_FINAL) else REFUSAL_BACKOFF_MAX
    gateway = view.destination(message.dst_chain_id)
    if validator.address not in gateway.validators:
        return f"not in the validator set of chain {message.dst_chain_id}", REFUSAL_BACKOFF_MAX
    digest = attestation_digest(
        bytes.fromhex(message.id[2:]), gateway.epoch, gateway.chain_id, gateway.address
    )
    return sign_digest(digest, validator.private_key)


def _record_refusal(
    session: Session,
    row: AttestationRefusal | None,
    message_id: str,
    me: str,
    reason: str,
    cap: float,
) -> None:
    if row is None:
        row = AttestationRefusal(message_id=message_id, validator=me, count=0)
        session.add(row)
    row.count += 1
    row.reason, row.at = reason, utcnow()
    delay = min(cap, 2.0 ** min(row.count, 16))
    row.retry_at = row.at + timedelta(seconds=delay)


class OwnAdapters(Protocol):
    """Where a validator gets adapters on the endpoints of its own configuration."""

    def own_adapter(self, family: str, rpc_urls: tuple[str, ...], quorum: int) -> ChainAdapter: ...


class MessageFacts(Protocol):
    """What the hub says about a message, which a validator checks against the source chain
    (a row of the hub's database, or the API's answer for a validator outside the hub)."""

    @property
    def id(self) -> str: ...
    @property
    def src_chain_id(self) -> int: ...
    @property
    def dst_chain_id(self) -> int: ...
    @property
    def src_tx_hash(self) -> str: ...
    @property
    def src_block_number(self) -> int: ...
    @property
    def src_block_hash(self) -> str: ...


class OwnView:
    """The chains as this validator's own endpoints show them, read once per round: the final
    block per chain, receipts per transaction, gateway logs per block, destination gateways."""

    def __init__(self, ctx: OwnAdapters, config: ValidatorConfig) -> None:
        self._ctx, self._config = ctx, config
        self._final: dict[int, int] = {}
        self._logs: dict[tuple[int, int], list[ObservedMessage]] = {}
        self._by_id: dict[tuple[int, int], dict[str, list[ObservedMessage]]] = {}
        self._gateways: dict[int, GatewayConfig] = {}

    def _adapter(self, chain: WatchedChain) -> ChainAdapter:
        return self._ctx.own_adapter(chain.family, chain.rpc_urls, chain.quorum)

    def destination(self, chain_id: int) -> GatewayConfig:
        """The destination gateway of this validator's configuration, as its chain reports it."""
        if chain_id not in self._gateways:
            chain = self._config.chains[chain_id]
            self._gateways[chain_id] = self._adapter(chain).gateway_config(chain.gateway)
        return self._gateways[chain_id]

    def prefetch(self, messages: Sequence[MessageFacts]) -> None:
        """Read the gateway logs of every source block these messages name, in one range per
        cluster of nearby blocks, so `problem` asks the chain nothing per message. A chain
        that does not answer is left to `problem`, which then fails for its messages alone."""
        blocks: dict[int, set[int]] = defaultdict(set)
        for message in messages:
            if self._config.chain(message.src_chain_id) is not None:
                blocks[message.src_chain_id].add(message.src_block_number)
        for chain_id, numbers in blocks.items():
            chain = self._config.chains[chain_id]
            wanted = sorted(n for n in numbers if (chain_id, n) not in self._logs)
            for low, high in _spans(wanted, PREFETCH_GAP):
                try:
                    found = self._adapter(chain).messages(chain.gateway, low, high)
                except Exception as exc:  # left to each message's own check
                    log.warning("prefetch failed", extra={"chain_id": chain_id, "error": str(exc)})
                    continue
                for number in range(low, high + 1):
                    self._logs[(chain_id, number)] = []
                for item in found:
                    self._logs.setdefault((chain_id, item.block_number), []).append(item)

    def problem(self, message: MessageFacts) -> str | None:
        """Why this message must not be signed, or None: both chains must be ones this
        validator watches, and the source gateway must have emitted this very message in the
        recorded transaction and block (logs come only from successful transactions of
        canonical blocks, with their block's hash), at or below the final block."""
        src = self._config.chain(message.src_chain_id)
        if src is None or self._config.chain(message.dst_chain_id) is None:
            return "a chain this validator does not watch"
        adapter = self._adapter(src)
        emitted = [
            m
            for m in self._emitted(adapter, src, message.src_block_number).get(message.id, [])
            if m.tx_hash == message.src_tx_hash
        ]
        if not emitted:
            return (
                "source transaction missing or reverted: the source gateway did not emit "
                "this message in that transaction at that block"
            )
        if emitted[0].block_hash != message.src_block_hash:
            return "source transaction is in another block than recorded"
        if self._final_block(adapter, src) < message.src_block_number:
            return f"block {message.src_block_number} {NOT_FINAL}"
        return None

    def _emitted(
        self, adapter: ChainAdapter, chain: WatchedChain, block: int
    ) -> dict[str, list[ObservedMessage]]:
        """The gateway's messages in a block by id (each id computed once, not per lookup)."""
        key = (chain.chain_id, block)
        if key not in self._by_id:
            index: dict[str, list[ObservedMessage]] = defaultdict(list)
            for item in self._messages(adapter, chain, block):
                index["0x" + item.id.hex()].append(item)
            self._by_id[key] = index
        return self._by_id[key]

    def _final_block(self, adapter: ChainAdapter, chain: WatchedChain) -> int:
        if chain.chain_id not in self._final:
            self._final[chain.chain_id] = adapter.finalized_block(chain.finality).number
        return self._final[chain.chain_id]

    def _messages(
        self, adapter: ChainAdapter, chain: WatchedChain, block: int
    ) -> list[ObservedMessage]:
        key = (chain.chain_id, block)
        if key not in self._logs:
            self._logs[key] = adapter.messages(chain.gateway, block, block)
        return self._logs[key]


def _spans(numbers: list[int], gap: int) -> Iterator[tuple[int, int]]:
    """Sorted block numbers as (low, high) ranges, split where two are `gap` or more apart."""
    if not numbers:
        return
    low = high = numbers[0]
    for number in numbers[1:]:
        if number - high >= gap:
            yield low, high
            low = number
        high = number
    yield low, high
