"""What a destination gateway reported about a message: delivered, or returned (given up by
its recipient). Failures and waits are the lifecycle's (`Lifecycle.fail`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from adapters.base import DeliveryOutcome, DeliveryStatus
from hub.db.models import Message
from hub.domain.lifecycle import Lifecycle
from hub.services.messages import lifecycle, lifecycles


def _message(session: Session, outcome: DeliveryOutcome) -> Message | None:
    return session.get(Message, "0x" + outcome.message_id.hex())


def mark_delivered(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message the destination gateway reports delivered; 1 if it changed."""
    message = _message(session, outcome)
    if message is None:
        return 0
    return int(lifecycle(session, message).deliver(outcome.tx_hash, outcome.block_number))


def mark_all_delivered(session: Session, found: Sequence[DeliveryOutcome]) -> int:
    """`mark_delivered` for many outcomes (the others are skipped): the messages read in one
    query and settled together (`Lifecycles`). Returns how many changed."""
    delivered = {
        "0x" + o.message_id.hex(): o for o in found if o.status is DeliveryStatus.DELIVERED
    }
    if not delivered:
        return 0
    rows = session.scalars(
        select(Message)
        .where(Message.id.in_(sorted(delivered)))
        .order_by(Message.id)
        .options(lazyload("*"))
    )
    settled = 0

    def settle(life: Lifecycle, message: Message) -> None:
        nonlocal settled
        outcome = delivered[message.id]
        settled += life.deliver(outcome.tx_hash, outcome.block_number)

    lifecycles(session, rows).move(settle)
    return settled


def mark_returned(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message its recipient gave up (a bridge returned the transfer); 1 if changed."""
    message = _message(session, outcome)
    if message is None:
        return 0
    return int(lifecycle(session, message).give_back(outcome.tx_hash, outcome.block_number))
