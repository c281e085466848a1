"""Moving many messages at once (on an in-memory SQLite database, no services): the same
rules (the same `Lifecycle` moves) as one at a time, one timeline entry per move; and the
validator's block ranges."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db.models import Message, MessageEvent
from hub.domain.errors import IllegalTransitionError
from hub.domain.states import MessageState
from hub.services.messages import lifecycles
from hub.services.relay.validator import _spans

S = MessageState


def _message(i: int, state: MessageState) -> Message:
    return Message(
        id="0x" + f"{i:064x}",
        version=2,
        src_chain_id=1,
        src_gateway="0x" + "11" * 20,
        dst_chain_id=2,
        nonce=i,
        sender="0x" + "22" * 20,
        recipient="0x" + "33" * 20,
        gas_limit=200_000,
        payload=b"",
        state=state.value,
        src_block_number=i,
        src_block_hash="0x" + "44" * 32,
        src_tx_hash="0x" + "55" * 32,
        src_log_index=0,
    )


def _elsewhere(session: Session, message_id: str, state: str) -> None:
    """Another worker moves the row: this session's object still shows what it read."""
    moved = update(Message).where(Message.id == message_id).values(state=state)
    session.execute(moved.execution_options(synchronize_session=False))


TX = "0x" + "dd" * 32


def test_many_move_together_each_with_its_timeline_entry(session: Session) -> None:
    rows = [_message(i, S.ATTESTED) for i in range(3)] + [_message(3, S.FAILED)]
    session.add_all(rows)
    session.commit()
    moved = lifecycles(session, rows).move(lambda life, m: life.submit(TX, m.nonce))
    session.commit()
    assert len(moved) == 4 and all(m.state == S.SUBMITTED for m in rows)
    assert all(m.dst_tx_hash == TX for m in rows)
    stored = set(session.scalars(select(Message.state)))
    assert stored == {S.SUBMITTED.value}
    events = session.scalars(select(MessageEvent).order_by(MessageEvent.message_id)).all()
    assert [(e.state, e.detail) for e in events] == [
        ("submitted", f"in {TX} (nonce {i})") for i in range(4)
    ]


def test_two_moves_of_one_message_are_one_update_and_two_entries(session: Session) -> None:
    rows = [_message(0, S.OBSERVED), _message(1, S.SUBMITTED), _message(2, S.ORPHANED)]
    session.add_all(rows)
    session.commit()
    moved = lifecycles(session, rows).move(lambda life, _m: life.deliver(TX, 9))
    session.commit()
    assert [m.id for m in moved] == [rows[0].id, rows[1].id]
    assert [m.state for m in rows] == ["delivered", "delivered", "orphaned"]
    assert rows[2].dst_tx_hash == TX and rows[2].dst_block_number == 9  # where it went
    events = session.scalars(select(MessageEvent).order_by(MessageEvent.id)).all()
    assert [(e.message_id, e.state) for e in events] == [
        (rows[0].id, "finalized"),
        (rows[0].id, "delivered"),
        (rows[1].id, "delivered"),
    ]


def test_an_illegal_move_moves_nothing(session: Session) -> None:
    rows = [_message(0, S.OBSERVED), _message(1, S.ATTESTED)]
    session.add_all(rows)
    session.commit()
    with pytest.raises(IllegalTransitionError):
        lifecycles(session, rows).move(lambda life, m: life.submit(TX, m.nonce))
    session.rollback()
    assert set(session.scalars(select(Message.state))) == {"observed", "attested"}


def test_a_row_moved_meanwhile_to_the_same_state_is_no_error(session: Session) -> None:
    rows = [_message(0, S.ATTESTED), _message(1, S.ATTESTED)]
    session.add_all(rows)
    session.commit()
    _elsewhere(session, rows[0].id, "delivered")
    moved = lifecycles(session, rows).move(lambda life, _m: life.deliver(TX, 9))
    assert [m.id for m in moved] == [rows[1].id]


def test_a_row_moved_meanwhile_elsewhere_is_an_error(session: Session) -> None:
    row = _message(0, S.ATTESTED)
    session.add(row)
    session.commit()
    _elsewhere(session, row.id, "failed")
    with pytest.raises(IllegalTransitionError, match="became failed meanwhile"):
        lifecycles(session, [row]).move(lambda life, m: life.submit(TX, m.nonce))


def test_block_ranges_split_at_gaps() -> None:
    assert list(_spans([], 64)) == []
    assert list(_spans([5], 64)) == [(5, 5)]
    assert list(_spans([1, 2, 60, 200, 201], 64)) == [(1, 60), (200, 201)]
