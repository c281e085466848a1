"""What a delivery did to a message: delivered, failed (retry with backoff, then park)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.orm import Session

from adapters.base import DeliveryOutcome
from hub.db.models import Message, utcnow
from hub.domain.states import MessageState
from hub.services.messages import transition

_S = MessageState


def mark_delivered(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message the destination gateway reports delivered; 1 if it changed."""
    message = session.get(Message, "0x" + outcome.message_id.hex())
    if message is None or message.state == _S.DELIVERED:
        return 0
    if message.state in (_S.OBSERVED, _S.ORPHANED):
        # Delivered before we saw it final: finality comes first in the timeline.
        transition(session, message, _S.FINALIZED, "final (inferred from its delivery)")
    message.dst_tx_hash, message.dst_block_number = outcome.tx_hash, outcome.block_number
    message.next_attempt_at = None
    transition(session, message, _S.DELIVERED, f"delivered in {outcome.tx_hash}")
    return 1


def fail_attempt(
    session: Session, message: Message, error: str, max_attempts: int, base_seconds: float
) -> None:
    """Count a failed attempt: retry after an exponential backoff with jitter, or park the
    message as failed after its last attempt until an operator retries it."""
    message.attempts += 1
    message.last_error = error[:2000]
    if message.attempts >= max_attempts:
        message.next_attempt_at = None
        detail = f"parked after {message.attempts} attempts: {error[:300]}"
    else:
        delay = base_seconds * 2 ** (message.attempts - 1)
        delay *= 1 + random.random() / 2  # noqa: S311 - jitter, not security
        message.next_attempt_at = utcnow() + timedelta(seconds=delay)
        detail = f"attempt {message.attempts} failed, retry in {delay:.1f}s: {error[:300]}"
    if message.state == _S.FAILED:
        message.updated_at = utcnow()  # a further failure: the timeline keeps the first entry
        return
    transition(session, message, _S.FAILED, detail)
