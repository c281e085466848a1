"""A validator's work: re-read each final message on the source chain through its own RPC
endpoint, check it is final and matches, and sign it for the destination gateway.

Each signature is stored in a short transaction of its own: validators work concurrently, and
a long transaction would hold row locks the others wait on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import AdapterError, ChainAdapter, FinalityPolicy, ObservedMessage, Receipt
from hub.db.models import Attestation, Chain, Message, ValidatorSet
from hub.domain.attestation import attestation_digest, sign_digest
from hub.domain.errors import HubError
from hub.domain.states import ChainStatus, MessageState
from hub.services.relay.attestations import chain_by_id, record_attestation
from hub.services.relay.context import RelayContext

log = logging.getLogger("hub.relay.validator")


@dataclass(frozen=True)
class Validator:
    """A validator's identity; the key stays in this process's memory only."""

    private_key: str = field(repr=False)
    rpc_urls: dict[str, list[str]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(Account.from_key(self.private_key).address)


@dataclass(frozen=True)
class Work:
    """A message to sign, read from the database, with what signing it needs."""

    message: Message
    src: Chain
    dst: Chain
    epoch: int


def attest_pending(ctx: RelayContext, validator: Validator, limit: int = 200) -> int:
    """Sign every final message this validator has not signed yet; returns how many."""
    me = validator.address
    with ctx.transaction() as session:
        work = [w for m in _unsigned(session, me, limit) if (w := _work(session, m, me))]
    source = SourceView(ctx, validator)
    signed = 0
    for item in work:
        try:
            signed += _attest(ctx, source, validator, item)
        except (AdapterError, HubError) as exc:
            log.warning("not attested", extra={"message_id": item.message.id, "error": str(exc)})
    return signed


def _unsigned(session: Session, me: str, limit: int) -> list[Message]:
    mine = select(Attestation.id).where(
        Attestation.message_id == Message.id,
        Attestation.validator == me,
        Attestation.epoch == ValidatorSet.epoch,
    )
    query = (
        select(Message)
        .join(Chain, Chain.chain_id == Message.dst_chain_id)
        .join(ValidatorSet, ValidatorSet.chain_id == Chain.id)
        .where(Message.state == MessageState.FINALIZED.value, ~mine.exists())
        .order_by(Message.created_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def _work(session: Session, message: Message, me: str) -> Work | None:
    src, dst = (
        chain_by_id(session, message.src_chain_id),
        chain_by_id(session, message.dst_chain_id),
    )
    if src is None or dst is None or dst.status == ChainStatus.RETIRED:
        return None
    vset = session.get(ValidatorSet, dst.id)
    if vset is None or me not in vset.validators:
        return None
    return Work(message, src, dst, vset.epoch)


def _attest(ctx: RelayContext, source: SourceView, validator: Validator, item: Work) -> int:
    message = item.message
    problem = source.problem(item.src, message)
    if problem:
        log.warning("refused to attest", extra={"message_id": message.id, "reason": problem})
        return 0
    digest = attestation_digest(
        bytes.fromhex(message.id[2:]), item.epoch, item.dst.chain_id, item.dst.gateway_address
    )
    signature = sign_digest(digest, validator.private_key)
    with ctx.transaction() as session:
        current = session.get(Message, message.id)
        if current is None:
            return 0
        record_attestation(session, current, signature)
    log.info("attested", extra={"message_id": message.id, "validator": validator.address})
    return 1


class SourceView:
    """The source chains as this validator's own endpoints show them, read once per round:
    the final block per chain, receipts per transaction, gateway logs per block."""

    def __init__(self, ctx: RelayContext, validator: Validator) -> None:
        self._ctx, self._validator = ctx, validator
        self._final: dict[int, int] = {}
        self._receipts: dict[str, Receipt | None] = {}
        self._logs: dict[tuple[int, int], list[ObservedMessage]] = {}

    def _adapter(self, chain: Chain) -> ChainAdapter:
        return self._ctx.adapter(chain, self._validator.rpc_urls.get(chain.name))

    def problem(self, src: Chain, message: Message) -> str | None:
        """Why this message must not be signed, or None: the receipt, its block, finality and
        the message itself must all match what the source chain says."""
        adapter = self._adapter(src)
        if message.src_tx_hash not in self._receipts:
            self._receipts[message.src_tx_hash] = adapter.receipt(message.src_tx_hash)
        receipt = self._receipts[message.src_tx_hash]
        if receipt is None or not receipt.success:
            return "source transaction missing or reverted"
        if (receipt.block_number, receipt.block_hash) != (
            message.src_block_number,
            message.src_block_hash,
        ):
            return "source transaction is in another block than recorded"
        if src.chain_id not in self._final:
            policy = FinalityPolicy.parse(src.finality)
            self._final[src.chain_id] = adapter.finalized_block(policy).number
        if self._final[src.chain_id] < message.src_block_number:
            return f"block {message.src_block_number} is not final yet"
        key = (src.chain_id, receipt.block_number)
        if key not in self._logs:
            self._logs[key] = adapter.messages(
                src.gateway_address, receipt.block_number, receipt.block_number
            )
        if not any(
            "0x" + m.id.hex() == message.id and m.tx_hash == message.src_tx_hash
            for m in self._logs[key]
        ):
            return "the source gateway did not emit this message in that transaction"
        return None
