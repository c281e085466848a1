"""The message state machine refuses illegal transitions."""

from __future__ import annotations

import pytest

from hub.domain.errors import IllegalTransitionError
from hub.domain.states import MESSAGE_TRANSITIONS, MessageState, check_transition

S = MessageState


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.OBSERVED, S.FINALIZED),
        (S.FINALIZED, S.ATTESTED),
        (S.ATTESTED, S.SUBMITTED),
        (S.SUBMITTED, S.DELIVERED),
        (S.SUBMITTED, S.FAILED),
        (S.OBSERVED, S.ORPHANED),
        (S.FAILED, S.ATTESTED),
        (S.ATTESTED, S.FAILED),
        (S.FAILED, S.REJECTED),
        (S.ATTESTED, S.ORPHANED),  # a deep reorg dropped its block before it was sent on
    ],
)
def test_life_of_a_message(current: MessageState, new: MessageState) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.OBSERVED, S.DELIVERED),
        (S.DELIVERED, S.SUBMITTED),
        (S.ORPHANED, S.FINALIZED),
        (S.SUBMITTED, S.ORPHANED),  # on its way: its transaction decides
        (S.OBSERVED, S.SUBMITTED),
    ],
)
def test_illegal_transitions_are_refused(current: MessageState, new: MessageState) -> None:
    with pytest.raises(IllegalTransitionError, match=f"from {current.value} to {new.value}"):
        check_transition(current, new)


def test_every_state_has_an_entry() -> None:
    assert set(MESSAGE_TRANSITIONS) == set(MessageState)
