"""The message lifecycle decides states and the fields beside them, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.errors import IllegalTransitionError
from hub.domain.lifecycle import BackoffPolicy, Facts, Lifecycle, Step
from hub.domain.states import MessageState

S = MessageState
NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = BackoffPolicy(max_attempts=3, base_seconds=10, jitter=lambda: 0.0)


def life(state: MessageState, **fields: object) -> tuple[Lifecycle, list[Step]]:
    steps: list[Step] = []
    return Lifecycle(Facts(state, **fields), steps.append, lambda: NOW), steps  # type: ignore[arg-type]


def test_failures_back_off_then_park() -> None:
    message, steps = life(S.SUBMITTED)
    message.fail("recipient reverted: Refused()", POLICY)
    assert message.facts.attempts == 1
    assert message.facts.next_attempt_at == NOW + timedelta(seconds=10)
    assert message.facts.last_error == "recipient reverted: Refused()"
    assert steps[-1].detail == "attempt 1 failed, retry in 10.0s: recipient reverted: Refused()"
    message.fail("again", POLICY)  # a retry sent from failed fails again: no new timeline entry
    assert message.facts.next_attempt_at == NOW + timedelta(seconds=20)
    assert [s.moves for s in steps] == [True, False]
    message.fail("and again", POLICY)
    assert (message.state, message.facts.attempts, message.facts.next_attempt_at) == (
        S.FAILED,
        3,
        None,
    )
    assert steps[-1].detail is not None and steps[-1].detail.startswith("parked after 3")


def test_a_rate_limit_waits_without_an_attempt() -> None:
    message, steps = life(S.SUBMITTED)
    message.fail("RateLimited(5)", POLICY)
    assert (message.state, message.facts.attempts) == (S.ATTESTED, 0)
    assert message.facts.next_attempt_at == NOW + timedelta(seconds=POLICY.wait_seconds)
    assert steps[-1].detail == "waits: RateLimited(5)"


def test_a_delivery_seen_before_finality_is_final_first() -> None:
    message, steps = life(S.OBSERVED)
    assert message.deliver("0xabc", 7)
    assert [s.after.state for s in steps] == [S.FINALIZED, S.DELIVERED]
    assert (message.facts.dst_tx_hash, message.facts.dst_block_number) == ("0xabc", 7)
    assert not message.deliver("0xabc", 7)  # seen twice: nothing more


def test_an_orphaned_message_stays_orphaned_when_delivered_anyway() -> None:
    message, steps = life(S.ORPHANED)
    assert not message.deliver("0xabc", 7)
    assert message.state == S.ORPHANED and not steps[-1].moves
    assert message.facts.dst_tx_hash == "0xabc"


def test_reject_and_retry_own_their_fields() -> None:
    message, _ = life(S.FINALIZED)
    message.reject("no route from alpha to chain id 9")
    assert message.facts.last_error == "no route from alpha to chain id 9"
    message.retry("ops", signed_enough=False)
    assert (message.state, message.facts.last_error) == (S.FINALIZED, None)


def test_submit_records_the_transaction_and_replacement_follows_it() -> None:
    message, steps = life(S.ATTESTED)
    message.submit("0x01", 4)
    assert steps[-1].detail == "in 0x01 (nonce 4)"
    message.resubmit("0x02")
    assert message.facts.dst_tx_hash == "0x02" and message.state == S.SUBMITTED


def test_illegal_moves_are_refused_and_store_nothing() -> None:
    message, steps = life(S.DELIVERED)
    with pytest.raises(IllegalTransitionError):
        message.submit("0x01", 1)
    assert steps == []
