"""An operator puts a failed or rejected message back in line, or sends a failed transfer
back to its sender."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from hub.db.models import Attestation, Chain, Message, Route, Transfer, ValidatorSet, utcnow
from hub.domain.errors import ConflictError
from hub.domain.states import ChainStatus, MessageState
from hub.services import audit
from hub.services.messages import lifecycle
from hub.services.relay.attestations import chain_by_chain_id

RETRYABLE = frozenset({MessageState.FAILED, MessageState.REJECTED})


def retry_message(session: Session, message: Message, actor: str) -> Message:
    """Attempts start again from zero; the message is attested again if its signatures still
    meet the destination's threshold, else it waits for fresh ones as finalized."""
    if MessageState(message.state) not in RETRYABLE:
        raise ConflictError(
            f"message {message.id} is {message.state}; only failed or rejected ones are retried"
        )
    _check_route(session, message)
    lifecycle(session, message).retry(actor, _signed_enough(session, message))
    audit.record(session, actor, "message.retry", f"message:{message.id}")
    return message


def _check_route(session: Session, message: Message) -> None:
    """A retry must be able to go somewhere: a route exists, and its gas cap admits it."""
    src, dst = aliased(Chain), aliased(Chain)
    cap = session.scalar(
        select(Route.max_gas)
        .join(src, Route.src_chain_key == src.id)
        .join(dst, Route.dst_chain_key == dst.id)
        .where(
            src.chain_id == message.src_chain_id,
            dst.chain_id == message.dst_chain_id,
            dst.status != ChainStatus.RETIRED,
        )
    )
    if cap is None:
        raise ConflictError(f"message {message.id} has no route to retry on; create it first")
    if message.gas_limit > cap:
        raise ConflictError(
            f"message {message.id} asks for {message.gas_limit} gas, over its route's cap of "
            f"{cap}: raise the route's max_gas first",
            gas_limit=message.gas_limit,
            max_gas=cap,
        )


def _signed_enough(session: Session, message: Message) -> bool:
    dst = chain_by_chain_id(session, message.dst_chain_id)
    vset = session.get(ValidatorSet, dst.id) if dst else None
    if vset is None:
        return False
    count = session.scalar(
        select(func.count(Attestation.id)).where(
            Attestation.message_id == message.id, Attestation.epoch == vset.epoch
        )
    )
    return int(count or 0) >= vset.threshold > 0


def request_return(session: Session, message: Message, actor: str) -> Transfer:
    """Ask for a failed transfer to go back to its sender on the source chain: the guardian
    stage consumes it at the destination bridge (with the signatures that attested it) and
    the bridge sends the tokens back. Delivery attempts stop meanwhile."""
    transfer = message.transfer
    if transfer is None:
        raise ConflictError(f"message {message.id} is not a token transfer")
    if MessageState(message.state) != MessageState.FAILED:
        raise ConflictError(
            f"message {message.id} is {message.state}; only a failed transfer is returned"
        )
    if transfer.return_requested_at is None:
        transfer.return_requested_by, transfer.return_requested_at = actor, utcnow()
        transfer.return_error = None
        audit.record(session, actor, "transfer.return", f"message:{message.id}")
    return transfer
