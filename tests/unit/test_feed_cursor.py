"""The feed's cursor: an event committed after a later one (ids are taken at insert, commits
land in any order) is still sent, once; events filtered out are never sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from hub.db.models import Base, Message, MessageEvent
from hub.services.overview import FeedCursor, FeedFilter, latest_event_id


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        for n, dst in ((1, 2), (2, 3)):
            s.add(message(n, dst))
        s.commit()
        yield s
    engine.dispose()


def message(n: int, dst: int) -> Message:
    return Message(
        id=f"0x{n:064x}",
        version=2,
        src_chain_id=1,
        src_gateway="0xg",
        dst_chain_id=dst,
        nonce=n,
        sender="0xs",
        recipient="0xr",
        gas_limit=1,
        payload=b"",
        state="observed",
        src_block_number=1,
        src_block_hash="0xh",
        src_tx_hash="0xt",
        src_log_index=n,
    )


def event(s: Session, event_id: int, n: int, state: str) -> None:
    s.add(MessageEvent(id=event_id, message_id=f"0x{n:064x}", state=state))
    s.commit()


def test_a_late_commit_is_sent_once(session: Session) -> None:
    event(session, 1, 1, "observed")
    cursor = FeedCursor(session, latest_event_id(session))
    assert cursor.poll(session, FeedFilter()) == []
    event(session, 3, 1, "finalized")  # committed first
    assert [e.id for e, _ in cursor.poll(session, FeedFilter())] == [3]
    event(session, 2, 2, "observed")  # took its id earlier, committed later
    assert [(e.id, m.dst_chain_id) for e, m in cursor.poll(session, FeedFilter())] == [(2, 3)]
    assert cursor.poll(session, FeedFilter()) == []


def test_a_filter_leaves_others_out(session: Session) -> None:
    cursor = FeedCursor(session, 0)
    event(session, 1, 1, "observed")
    event(session, 2, 2, "observed")
    only = FeedFilter(chain_id=3)
    assert [m.id for _, m in cursor.poll(session, only)] == [f"0x{2:064x}"]
    event(session, 3, 2, "finalized")
    event(session, 4, 1, "finalized")
    assert [e.id for e, _ in cursor.poll(session, FeedFilter(message_id=f"0x{1:064x}"))] == [4]


def test_an_event_committed_while_a_viewer_starts_is_sent_once(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The viewer reads the newest id, then the backlog: an event committed between the two
    reads is in the backlog, and must not come again from the first poll."""
    from hub.api.routers import overview as feed
    from hub.services import overview as svc

    event(session, 1, 1, "observed")
    monkeypatch.setattr(svc, "latest_event_id", lambda _s: 0)  # read before event 1 landed
    viewer = feed._Viewer(lambda: session, FeedFilter())  # type: ignore[arg-type]
    frames = viewer.start(backlog=10, resume=None) + viewer.poll()
    assert [f.split("\n", 1)[0] for f in frames] == ["id: 1"]
