"""A validator's work: re-read each final message on the source chain through its own RPC
endpoint, check it is final and matches, and sign it for the destination gateway."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import AdapterError, ChainAdapter, FinalityPolicy
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


def attest_pending(ctx: RelayContext, validator: Validator, limit: int = 200) -> int:
    """Sign every final message this validator has not signed yet; returns how many."""
    me = validator.address
    signed = 0
    with ctx.transaction() as session:
        for message in _unsigned(session, me, limit):
            try:
                signed += _attest(ctx, session, validator, me, message)
            except (AdapterError, HubError) as exc:
                log.warning("not attested", extra={"message_id": message.id, "error": str(exc)})
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


def _attest(
    ctx: RelayContext, session: Session, validator: Validator, me: str, message: Message
) -> int:
    src, dst = (
        chain_by_id(session, message.src_chain_id),
        chain_by_id(session, message.dst_chain_id),
    )
    if src is None or dst is None or dst.status == ChainStatus.RETIRED:
        return 0
    vset = session.get(ValidatorSet, dst.id)
    if vset is None or me not in vset.validators:
        return 0
    source = ctx.adapter(src, validator.rpc_urls.get(src.name))
    problem = verify_on_source(source, src, message)
    if problem:
        log.warning("refused to attest", extra={"message_id": message.id, "reason": problem})
        return 0
    message_id = bytes.fromhex(message.id[2:])
    digest = attestation_digest(message_id, vset.epoch, dst.chain_id, dst.gateway_address)
    record_attestation(session, message, sign_digest(digest, validator.private_key))
    log.info("attested", extra={"message_id": message.id, "validator": me})
    return 1


def verify_on_source(adapter: ChainAdapter, src: Chain, message: Message) -> str | None:
    """Why this message must not be signed, or None: the receipt, its block, finality and
    the message itself must all match what the source chain says."""
    receipt = adapter.receipt(message.src_tx_hash)
    if receipt is None or not receipt.success:
        return "source transaction missing or reverted"
    if (receipt.block_number, receipt.block_hash) != (
        message.src_block_number,
        message.src_block_hash,
    ):
        return "source transaction is in another block than recorded"
    final = adapter.finalized_block(FinalityPolicy.parse(src.finality))
    if final.number < message.src_block_number:
        return f"block {message.src_block_number} is not final yet (final: {final.number})"
    found = adapter.messages(src.gateway_address, receipt.block_number, receipt.block_number)
    if not any("0x" + m.id.hex() == message.id and m.tx_hash == message.src_tx_hash for m in found):
        return "the source gateway did not emit this message in that transaction"
    return None
