"""What operators and users look at: the hub at a glance, search, and the feed of state changes.

Reads only; the API, the CLI (through the API) and the dashboard share these answers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from hub.db.models import (
    Alert,
    Asset,
    Chain,
    Cursor,
    Message,
    MessageEvent,
    Route,
    Transfer,
    utcnow,
)
from hub.domain.states import ChainStatus, MessageState
from hub.services.chains import LiveStatus, live_status
from hub.services.netpolicy import NetworkPolicy

THROUGHPUT_WINDOW = timedelta(minutes=10)
_LIVE = (
    MessageState.OBSERVED,
    MessageState.FINALIZED,
    MessageState.ATTESTED,
    MessageState.SUBMITTED,
    MessageState.FAILED,
)


@dataclass(frozen=True)
class ChainView:
    chain: Chain
    cursor: Cursor | None
    live: LiveStatus


@dataclass(frozen=True)
class RouteView:
    route: Route
    delivered_recently: int
    in_flight: int


@dataclass
class Overview:
    chains: list[ChainView] = field(default_factory=list)
    routes: list[RouteView] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    open_alerts: int = 0
    at: datetime = field(default_factory=utcnow)


def overview(session: Session, rpc_timeout: float, policy: NetworkPolicy) -> Overview:
    """Chains (with their head read live, all at once), routes with their recent deliveries
    and messages in flight, assets, the backlog per state and the open alerts."""
    chains = list(session.scalars(select(Chain).where(Chain.status != ChainStatus.RETIRED)))
    cursors = {c.chain_key: c for c in session.scalars(select(Cursor))}
    lives = _live(chains, rpc_timeout, policy)
    return Overview(
        chains=[ChainView(c, cursors.get(c.id), lives[c.id]) for c in chains],
        routes=_routes(session),
        assets=list(session.scalars(select(Asset).order_by(Asset.symbol))),
        backlog=backlog(session),
        open_alerts=int(
            session.scalar(select(func.count()).where(Alert.resolved_at.is_(None))) or 0
        ),
    )


def _live(chains: list[Chain], timeout: float, policy: NetworkPolicy) -> dict[int, LiveStatus]:
    """Every chain's head at once: one slow chain costs its own timeout, not the sum."""
    if not chains:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(chains))) as pool:
        found = pool.map(lambda c: (c.id, live_status(c, timeout, policy)), chains)
        return dict(found)


def backlog(session: Session) -> dict[str, int]:
    """Messages per state, every state named (0 where there are none)."""
    query = select(Message.state, func.count()).group_by(Message.state)
    counts = {state: int(n) for state, n in session.execute(query)}
    return {s.value: int(counts.get(s, 0)) for s in MessageState}


def _routes(session: Session) -> list[RouteView]:
    since = utcnow() - THROUGHPUT_WINDOW
    pair = (Message.src_chain_id, Message.dst_chain_id)
    delivered = _per_route(
        session,
        select(*pair, func.count())
        .where(Message.state == MessageState.DELIVERED.value, Message.updated_at >= since)
        .group_by(*pair),
    )
    waiting = _per_route(
        session,
        select(*pair, func.count())
        .where(Message.state.in_([s.value for s in _LIVE]))
        .group_by(*pair),
    )
    routes = session.scalars(select(Route).order_by(Route.id))
    return [
        RouteView(
            r,
            delivered.get((r.src.chain_id, r.dst.chain_id), 0),
            waiting.get((r.src.chain_id, r.dst.chain_id), 0),
        )
        for r in routes
    ]


def _per_route(session: Session, query: object) -> dict[tuple[int, int], int]:
    return {(int(s), int(d)): int(n) for s, d, n in session.execute(query)}  # type: ignore[call-overload]


# -- search -------------------------------------------------------------------------------

HASH = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class Found:
    kind: str  # message, transaction, address, nothing
    messages: list[Message]


def search(session: Session, query: str, limit: int = 50) -> Found:
    """A message id, a transaction hash (source or delivery) or an address (a message's
    sender or recipient, a transfer's from or to): the messages it names, newest first."""
    text = query.strip().lower()
    if HASH.match(text):
        value = text if text.startswith("0x") else "0x" + text
        message = session.get(Message, value)
        if message is not None:
            return Found("message", [message])
        found = _newest(
            session,
            or_(Message.src_tx_hash == value, func.lower(Message.dst_tx_hash) == value),
            limit,
        )
        return Found("transaction" if found else "nothing", found)
    if ADDRESS.match(text):
        value = text if text.startswith("0x") else "0x" + text
        moved = select(Transfer.message_id).where(
            or_(func.lower(Transfer.sender) == value, func.lower(Transfer.recipient) == value)
        )
        found = _newest(
            session,
            or_(
                func.lower(Message.sender) == value,
                func.lower(Message.recipient) == value,
                Message.id.in_(moved),
            ),
            limit,
        )
        return Found("address" if found else "nothing", found)
    return Found("nothing", [])


def _newest(session: Session, where: object, limit: int) -> list[Message]:
    query = (
        select(Message)
        .where(where)  # type: ignore[arg-type]
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


# -- the feed -----------------------------------------------------------------------------

# Events are read by id; a transaction that took an id and committed after a later one is
# still found if it is within this many ids of the newest seen.
FEED_LOOKBACK = 1000


@dataclass(frozen=True)
class FeedFilter:
    message_id: str | None = None
    chain_id: int | None = None  # source or destination


def latest_event_id(session: Session) -> int:
    return int(session.scalar(select(func.max(MessageEvent.id))) or 0)


class FeedCursor:
    """Where one viewer of the feed is: the newest event id sent and the ids sent near it.

    Event ids are taken when a transaction inserts, so a transaction may commit an id below
    one already sent; reading back FEED_LOOKBACK ids and skipping those sent finds it."""

    def __init__(self, session: Session, after: int) -> None:
        self.last = after
        low = max(0, after - FEED_LOOKBACK)
        query = select(MessageEvent.id).where(MessageEvent.id > low, MessageEvent.id <= after)
        self._sent = set(session.scalars(query))

    def poll(
        self, session: Session, where: FeedFilter, limit: int = 200
    ) -> list[tuple[MessageEvent, Message]]:
        """Events not sent yet, oldest first, with their message. The ids of the window are
        read first (from the primary key alone); full rows only for those not sent."""
        low = max(0, self.last - FEED_LOOKBACK)
        window = session.scalars(select(MessageEvent.id).where(MessageEvent.id > low))
        fresh = sorted(set(window) - self._sent)[:limit]
        if not fresh:
            return []
        query = _filtered(
            select(MessageEvent, Message)
            .join(Message, Message.id == MessageEvent.message_id)
            .where(MessageEvent.id.in_(fresh))
            .order_by(MessageEvent.id),
            where,
        )
        rows = [(e, m) for e, m in session.execute(query)]
        self.skip(fresh)  # those the filter left out are as good as sent
        return rows

    def skip(self, ids: Iterable[int]) -> None:
        """Count these as sent (a filtered-out event is as good as sent)."""
        self._sent.update(ids)
        if self._sent:
            self.last = max(self.last, *self._sent)
        low = self.last - FEED_LOOKBACK
        self._sent = {i for i in self._sent if i > low}


def _filtered(
    query: Select[MessageEvent, Message], where: FeedFilter
) -> Select[MessageEvent, Message]:
    if where.message_id is not None:
        query = query.where(MessageEvent.message_id == where.message_id)
    if where.chain_id is not None:
        query = query.where(
            or_(Message.src_chain_id == where.chain_id, Message.dst_chain_id == where.chain_id)
        )
    return query


def recent_events(
    session: Session, count: int, where: FeedFilter
) -> list[tuple[MessageEvent, Message]]:
    """The last `count` events, oldest first (what a new viewer sees before the live ones)."""
    query = _filtered(
        select(MessageEvent, Message).join(Message, Message.id == MessageEvent.message_id), where
    )
    rows = [(e, m) for e, m in session.execute(query.order_by(MessageEvent.id.desc()).limit(count))]
    return rows[::-1]
