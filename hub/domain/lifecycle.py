"""A message's life as one object: intention-revealing moves (finalize, attest, submit, fail
with a backoff, deliver, orphan, reject, ...) that decide the state and the fields that go
with it (attempts, next attempt, last error, destination transaction). The legal moves are
`hub.domain.states.MESSAGE_TRANSITIONS`; this object refuses the others.

Pure code: it decides and hands each step to a `store` the service layer gives it (which
writes the row and its timeline), so it can be tested without a database."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from hub.domain.states import MessageState, check_transition

_S = MessageState
ERROR_CHARS = 2000  # what `last_error` keeps
DETAIL_CHARS = 300  # what a timeline entry quotes of an error


class Waits(StrEnum):
    """Reverts that are nobody's fault but time's: the destination bridge's rate limit has no
    room yet, or a contract is paused. A message held up by one waits; no attempt is charged."""

    RATE_LIMITED = "RateLimited("
    PAUSED = "EnforcedPause()"


def passes_with_time(error: str) -> bool:
    return any(reason in error for reason in Waits)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How failed delivery attempts are retried: exponential backoff with jitter, parked after
    `max_attempts`; a wait (see `Waits`) is `wait_seconds`, no attempt charged."""

    max_attempts: int
    base_seconds: float
    wait_seconds: float = 5.0
    # 0 <= jitter() < 1; a test passes a constant to see exact delays
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`, after `attempts` failed ones."""
        return float(self.base_seconds * 2 ** (attempts - 1) * (1 + self.jitter() / 2))


@dataclass(frozen=True, slots=True)
class Facts:
    """The fields of a message its lifecycle owns."""

    state: MessageState
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    dst_tx_hash: str | None = None
    dst_block_number: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One decided step: the fields before and after, and the timeline entry of a move."""

    before: Facts
    after: Facts
    detail: str | None

    @property
    def moves(self) -> bool:
        return self.before.state != self.after.state


Store = Callable[[Step], None]


class Lifecycle:
    """The moves of one message. Each method is one thing that happened to it; re-entering
    the current state is a no-op (a stage may run twice)."""

    def __init__(self, facts: Facts, store: Store, now: Callable[[], datetime]) -> None:
        self.facts, self._store, self._now = facts, store, now

    @property
    def state(self) -> MessageState:
        return self.facts.state

    # -- source side: the scan ---------------------------------------------------------

    def finalize(self, detail: str) -> None:
        """Its block is final and still canonical (or a validator set changed under it)."""
        self._go(_S.FINALIZED, detail)

    def orphan(self, reason: str) -> None:
        """Its block was replaced by a reorg: nothing from it is relayed, ever."""
        self._go(_S.ORPHANED, reason, last_error=reason[:ERROR_CHARS], next_attempt_at=None)

    def reject(self, reason: str) -> None:
        """It cannot be relayed (no route, a retired chain, gas over the route's cap); an
        operator may retry it once that changed."""
        self._go(_S.REJECTED, reason, last_error=reason[:ERROR_CHARS], next_attempt_at=None)

    # -- signatures --------------------------------------------------------------------

    def attest(self, threshold: int, validators: int) -> None:
        """Its stored signatures meet the destination's threshold."""
        self._go(_S.ATTESTED, f"{threshold} of {validators} signed")

    def unattest(self, epoch: int) -> None:
        """The destination's validator set changed: old-epoch signatures no longer count."""
        self._go(_S.FINALIZED, f"validator set changed to epoch {epoch}")

    # -- destination side: deliver and confirm -------------------------------------------

    def submit(self, tx_hash: str, nonce: int) -> None:
        """Recorded in a delivery transaction (about to be sent)."""
        self._go(_S.SUBMITTED, f"in {tx_hash} (nonce {nonce})", dst_tx_hash=tx_hash)

    def resubmit(self, tx_hash: str) -> None:
        """Its transaction was replaced by one with a higher fee (same nonce)."""
        if self.state == _S.SUBMITTED:
            self._go(_S.SUBMITTED, None, dst_tx_hash=tx_hash)

    def requeue(self, detail: str) -> None:
        """Back in line for delivery, no attempt charged: its transaction was dropped, or
        reverted because of another message of its batch."""
        self._go(_S.ATTESTED, detail)

    def fail(self, error: str, policy: BackoffPolicy) -> None:
        """A delivery attempt failed: retry after a backoff, or park it after its last attempt
        until an operator retries it. A reason that passes with time only makes it wait."""
        if passes_with_time(error):
            self.wait(error, policy)
            return
        attempts = self.facts.attempts + 1
        if attempts >= policy.max_attempts:
            retry_at = None
            detail = f"parked after {attempts} attempts: {error[:DETAIL_CHARS]}"
        else:
            delay = policy.delay(attempts)
            retry_at = self._now() + timedelta(seconds=delay)
            detail = f"attempt {attempts} failed, retry in {delay:.1f}s: {error[:DETAIL_CHARS]}"
        # A further failure keeps the timeline's first entry (the step does not move).
        self._go(
            _S.FAILED,
            detail,
            attempts=attempts,
            last_error=error[:ERROR_CHARS],
            next_attempt_at=retry_at,
        )

    def wait(self, error: str, policy: BackoffPolicy) -> None:
        """Held up by something that passes (see `Waits`): attested again, tried later."""
        retry_at = self._now() + timedelta(seconds=policy.wait_seconds)
        self._go(
            _S.ATTESTED,
            f"waits: {error[:DETAIL_CHARS]}",
            last_error=error[:ERROR_CHARS],
            next_attempt_at=retry_at,
        )

    def deliver(self, tx_hash: str, block: int) -> bool:
        """The destination gateway reports it delivered (by us or anyone); True if it moved."""
        return self._settle(_S.DELIVERED, f"delivered in {tx_hash}", tx_hash, block)

    def give_back(self, tx_hash: str, block: int) -> bool:
        """Its recipient gave it up unhandled (a bridge returned the transfer to its sender);
        True if it moved."""
        return self._settle(_S.RETURNED, f"returned to its sender in {tx_hash}", tx_hash, block)

    def _settle(self, state: MessageState, detail: str, tx_hash: str, block: int) -> bool:
        if self.state in (_S.DELIVERED, _S.RETURNED):
            return False
        if self.state == _S.ORPHANED:
            # Terminal: its block was dropped, yet someone delivered what was signed for it.
            # The state stays; the row says where it went.
            note = f"{detail} after its block was dropped"
            self._go(
                _S.ORPHANED, None, dst_tx_hash=tx_hash, dst_block_number=block, last_error=note
            )
            return False
        if self.state == _S.OBSERVED:
            # Settled before the scan saw it final: finality comes first in the timeline.
            self._go(_S.FINALIZED, "final (inferred from its delivery)")
        self._go(state, detail, next_attempt_at=None, dst_tx_hash=tx_hash, dst_block_number=block)
        return True

    # -- operators ---------------------------------------------------------------------

    def retry(self, actor: str, signed_enough: bool) -> None:
        """An operator puts it back in line, attempts from zero: attested if its signatures
        still meet the threshold, else finalized, to be signed again."""
        target = _S.ATTESTED if signed_enough else _S.FINALIZED
        self._go(target, f"retried by {actor}", attempts=0, next_attempt_at=None, last_error=None)

    # -- the one place a step is taken -------------------------------------------------

    def _go(
        self,
        state: MessageState,
        detail: str | None,
        **fields: int | str | datetime | None,
    ) -> None:
        if state != self.state:
            check_transition(self.state, state)
        after = replace(self.facts, state=state, **fields)  # type: ignore[arg-type]
        if after == self.facts:
            return
        step = Step(self.facts, after, detail)
        self._store(step)
        self.facts = after
