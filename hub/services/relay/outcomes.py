"""What a destination gateway reported about a message: delivered, or returned (given up by
its recipient). Failures and waits are the lifecycle's (`Lifecycle.fail`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from adapters.base import DeliveryOutcome
from hub.db.models import Message
from hub.services.messages import lifecycle


def _message(session: Session, outcome: DeliveryOutcome) -> Message | None:
    return session.get(Message, "0x" + outcome.message_id.hex())


def mark_delivered(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message the destination gateway reports delivered; 1 if it changed."""
    message = _message(session, outcome)
    if message is None:
        return 0
    return int(lifecycle(session, message).deliver(outcome.tx_hash, outcome.block_number))


def mark_returned(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message its recipient gave up (a bridge returned the transfer); 1 if changed."""
    message = _message(session, outcome)
    if message is None:
        return 0
    return int(lifecycle(session, message).give_back(outcome.tx_hash, outcome.block_number))
