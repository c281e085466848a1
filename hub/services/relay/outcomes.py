"""What a delivery did to a message: delivered, returned, failed (retry with backoff, then
park), or held up by something that passes (a rate limit, a pause: wait, no attempt charged)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from adapters.base import DeliveryOutcome, DeliveryStatus
from hub.db.models import Message, utcnow
from hub.domain.states import MessageState
from hub.services.messages import transition, transition_many

_S = MessageState
# Reverts that are nobody's fault but time's: the destination bridge's rate limit has no room
# yet, or a contract is paused. The message waits; no attempt is charged.
WAIT_REASONS = ("RateLimited(", "EnforcedPause()")
WAIT_SECONDS = 5.0


def _settled(session: Session, outcome: DeliveryOutcome) -> Message | None:
    """The message an on-chain outcome settles, ready to move; None if it needs nothing."""
    message = session.get(Message, "0x" + outcome.message_id.hex())
    if message is None or message.state in (_S.DELIVERED, _S.RETURNED):
        return None
    if message.state in (_S.OBSERVED, _S.ORPHANED):
        # Settled before we saw it final: finality comes first in the timeline.
        transition(session, message, _S.FINALIZED, "final (inferred from its delivery)")
    message.next_attempt_at = None
    return message


def mark_delivered(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message the destination gateway reports delivered; 1 if it changed."""
    message = _settled(session, outcome)
    if message is None:
        return 0
    message.dst_tx_hash, message.dst_block_number = outcome.tx_hash, outcome.block_number
    transition(session, message, _S.DELIVERED, f"delivered in {outcome.tx_hash}")
    return 1


def mark_all_delivered(session: Session, found: Sequence[DeliveryOutcome]) -> int:
    """`mark_delivered` for many outcomes: the messages read in one query and moved together
    (those that need finality inferred first go one by one). Returns how many changed."""
    delivered = {
        "0x" + o.message_id.hex(): o for o in found if o.status is DeliveryStatus.DELIVERED
    }
    rows = session.scalars(
        select(Message)
        .where(Message.id.in_(sorted(delivered)))
        .order_by(Message.id)
        .options(lazyload("*"))
    )
    ready, settled = [], 0
    for message in rows:
        outcome = delivered[message.id]
        if message.state in (_S.DELIVERED, _S.RETURNED):
            continue
        if message.state in (_S.OBSERVED, _S.ORPHANED):
            settled += mark_delivered(session, outcome)
            continue
        message.next_attempt_at = None
        message.dst_tx_hash, message.dst_block_number = outcome.tx_hash, outcome.block_number
        ready.append(message)
    moved = transition_many(session, ready, _S.DELIVERED, lambda m: f"delivered in {m.dst_tx_hash}")
    return settled + len(moved)


def mark_returned(session: Session, outcome: DeliveryOutcome) -> int:
    """Settle a message its recipient gave up (a bridge returned the transfer); 1 if changed."""
    message = _settled(session, outcome)
    if message is None:
        return 0
    message.dst_tx_hash, message.dst_block_number = outcome.tx_hash, outcome.block_number
    transition(session, message, _S.RETURNED, f"returned to its sender in {outcome.tx_hash}")
    return 1


def waits(error: str) -> bool:
    return any(reason in error for reason in WAIT_REASONS)


def fail_attempt(
    session: Session, message: Message, error: str, max_attempts: int, base_seconds: float
) -> None:
    """Count a failed attempt: retry after an exponential backoff with jitter, or park the
    message as failed after its last attempt until an operator retries it. A reason that
    passes with time (see WAIT_REASONS) only makes the message wait."""
    if waits(error):
        _wait(session, message, error)
        return
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


def _wait(session: Session, message: Message, error: str) -> None:
    message.last_error = error[:2000]
    message.next_attempt_at = utcnow() + timedelta(seconds=WAIT_SECONDS)
    if message.state != _S.ATTESTED:
        transition(session, message, _S.ATTESTED, f"waits: {error[:300]}")
