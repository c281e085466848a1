"""A validator's work: for each final message the hub lists, re-read the source chain through
the validator's own endpoints and the gateway it trusts (its configuration, never the hub's
database), check the message is final and was emitted there, and sign it for the destination
gateway of its own configuration.

The hub's database only says what to look at; it cannot make a validator sign. A pause is
honoured (nothing is signed for a paused chain, route or asset), and a message a validator
refuses is set aside for it with a backoff, so it never hides the messages behind it.
Each signature is stored in a short transaction of its own: validators work concurrently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from eth_account import Account
from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session, aliased

from adapters.base import ChainAdapter, GatewayConfig, ObservedMessage, Receipt
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
from hub.services.relay.attestations import record_attestation
from hub.services.relay.ports import Ports
from hub.services.relay.validator_config import ValidatorConfig, WatchedChain

log = logging.getLogger("hub.relay.validator")
REFUSAL_BACKOFF_MAX = 300.0  # the source shows something else than the hub says
TRANSIENT_BACKOFF_MAX = 30.0  # a chain that did not answer
NOT_FINAL_RETRY = 1.0
NOT_FINAL = "is not final yet"


@dataclass(frozen=True)
class Validator:
    """A validator's identity and its own view of the chains; the key stays in memory."""

    private_key: str = field(repr=False)
    config: ValidatorConfig

    @property
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


def attest(session: Session, validator: Validator, ports: Ports, limit: int = 200) -> AttestReport:
    """The attest stage of one validator: sign every final message it can check and has not
    signed. One message that cannot be checked (or a chain that cannot answer) never stops
    the rest. Each signature and each refusal is committed on its own (a commit point of
    this stage): validators work concurrently, and a long transaction held row locks the
    others waited on."""
    me = validator.address
    report = AttestReport(me)
    work = list(session.scalars(unsigned(me, list(validator.config.chains), limit)))
    session.expunge_all()
    session.commit()  # nothing is held while the chains are read
    view = OwnView(ports.chains, validator.config)
    for message in work:
        try:
            signed = _attest(session, view, validator, message)
        except Exception as exc:  # whatever it is, it concerns this message alone
            session.rollback()
            reason = f"could not check: {type(exc).__name__}: {exc}"
            _refuse(session, message.id, me, reason, cap=TRANSIENT_BACKOFF_MAX)
            signed = 0
        report.signed += signed
        report.refused += 1 - signed
    return report


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


def _attest(session: Session, view: OwnView, validator: Validator, message: Message) -> int:
    problem = view.problem(message)
    if problem is not None:
        cap = NOT_FINAL_RETRY if problem.endswith(NOT_FINAL) else REFUSAL_BACKOFF_MAX
        _refuse(session, message.id, validator.address, problem, cap=cap)
        return 0
    gateway = view.destination(message.dst_chain_id)
    if validator.address not in gateway.validators:
        reason = f"not in the validator set of chain {message.dst_chain_id}"
        _refuse(session, message.id, validator.address, reason)
        return 0
    digest = attestation_digest(
        bytes.fromhex(message.id[2:]), gateway.epoch, gateway.chain_id, gateway.address
    )
    signature = sign_digest(digest, validator.private_key)
    current = session.get(Message, message.id)
    if current is None:
        return 0
    record_attestation(session, current, signature)
    session.commit()
    log.info("attested", extra={"message_id": message.id, "validator": validator.address})
    return 1


def _refuse(
    session: Session, message_id: str, me: str, reason: str, cap: float = REFUSAL_BACKOFF_MAX
) -> None:
    """Set the message aside for this validator, with a backoff that doubles each time up
    to `cap` seconds (a block not final yet is looked at again within a second)."""
    log.warning("not attested", extra={"message_id": message_id, "validator": me, "reason": reason})
    _record_refusal(session, message_id, me, reason[:1000], cap)
    session.commit()


def _record_refusal(session: Session, message_id: str, me: str, reason: str, cap: float) -> None:
    row = session.scalar(
        select(AttestationRefusal).where(
            AttestationRefusal.message_id == message_id, AttestationRefusal.validator == me
        )
    )
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
        self._receipts: dict[str, Receipt | None] = {}
        self._logs: dict[tuple[int, int], list[ObservedMessage]] = {}
        self._gateways: dict[int, GatewayConfig] = {}

    def _adapter(self, chain: WatchedChain) -> ChainAdapter:
        return self._ctx.own_adapter(chain.family, chain.rpc_urls, chain.quorum)

    def destination(self, chain_id: int) -> GatewayConfig:
        """The destination gateway of this validator's configuration, as its chain reports it."""
        if chain_id not in self._gateways:
            chain = self._config.chains[chain_id]
            self._gateways[chain_id] = self._adapter(chain).gateway_config(chain.gateway)
        return self._gateways[chain_id]

    def problem(self, message: MessageFacts) -> str | None:
        """Why this message must not be signed, or None: both chains must be ones this
        validator watches, and the receipt, its block, finality and the message itself must
        all match what the source chain shows this validator."""
        src = self._config.chain(message.src_chain_id)
        if src is None or self._config.chain(message.dst_chain_id) is None:
            return "a chain this validator does not watch"
        adapter = self._adapter(src)
        receipt = self._receipt(adapter, message.src_tx_hash)
        if receipt is None or not receipt.success:
            return "source transaction missing or reverted"
        if (receipt.block_number, receipt.block_hash) != (
            message.src_block_number,
            message.src_block_hash,
        ):
            return "source transaction is in another block than recorded"
        if self._final_block(adapter, src) < message.src_block_number:
            return f"block {message.src_block_number} {NOT_FINAL}"
        if not any(
            "0x" + m.id.hex() == message.id and m.tx_hash == message.src_tx_hash
            for m in self._messages(adapter, src, receipt.block_number)
        ):
            return "the source gateway did not emit this message in that transaction"
        return None

    def _receipt(self, adapter: ChainAdapter, tx_hash: str) -> Receipt | None:
        if tx_hash not in self._receipts:
            self._receipts[tx_hash] = adapter.receipt(tx_hash)
        return self._receipts[tx_hash]

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
