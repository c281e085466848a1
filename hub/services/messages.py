"""Messages: where a message's lifecycle is written (its row, its timeline), and the queries
the API shows."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import (
    Session,
    aliased,
    contains_eager,
    defaultload,
    joinedload,
    lazyload,
)
from sqlalchemy.orm.attributes import set_committed_value

from hub.db.models import Asset, Chain, Message, MessageEvent, Route, Transfer, utcnow
from hub.domain.errors import IllegalTransitionError, InvalidInputError, NotFoundError
from hub.domain.lifecycle import BackoffPolicy, Facts, Lifecycle, Step
from hub.domain.states import (
    AssetStatus,
    ChainStatus,
    MessageState,
    RouteStatus,
    check_transition,
)
from hub.settings import Settings


def lifecycle(session: Session, message: Message) -> Lifecycle:
    """The lifecycle of a message row: each step it takes is written to the row and, when the
    state moves, to its timeline (see `transition`)."""
    return _lifecycle(message, partial(_store, session, message))


_OWNED = ("attempts", "next_attempt_at", "last_error", "dst_tx_hash", "dst_block_number")


def _store(session: Session, message: Message, step: Step) -> None:
    for name in _OWNED:
        value = getattr(step.after, name)
        if value != getattr(step.before, name):
            setattr(message, name, value)
    if step.moves:
        transition(session, message, step.after.state, step.detail)
    else:
        message.updated_at = utcnow()


def backoff_policy(settings: Settings) -> BackoffPolicy:
    """The relay's retry policy (`HUB_MAX_ATTEMPTS`, `HUB_RETRY_BASE_SECONDS`)."""
    return BackoffPolicy(settings.max_attempts, settings.retry_base_seconds)


def transition(
    session: Session, message: Message, new: MessageState, detail: str | None = None
) -> None:
    """Move a message to `new`, refusing what the state machine forbids, and record the step
    in its timeline. Only `lifecycle` calls it: stages say what happened, not which state.
    Re-entering the current state is a no-op (tasks may run twice).

    The row moves only if it is still in the state this process read (a conditional UPDATE),
    so two workers acting on one message at once cannot both move it."""
    current = MessageState(message.state)
    if current == new:
        return
    check_transition(current, new)
    now = utcnow()
    moved = session.execute(
        update(Message)
        .where(Message.id == message.id, Message.state == current.value)
        .values(state=new.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        session.refresh(message, ["state"])
        if message.state == new.value:
            return  # another worker made the same move first
        raise IllegalTransitionError(
            f"message {message.id} became {message.state} meanwhile; not moved to {new.value}"
        )
    set_committed_value(message, "state", new.value)
    set_committed_value(message, "updated_at", now)
    session.add(MessageEvent(message_id=message.id, state=new.value, at=now, detail=detail))


class Lifecycles:
    """The lifecycles of many message rows, moved together: each message's move is decided by
    its own `Lifecycle` (the same rules and fields as one at a time), and the steps are written
    at once: the rows locked in id order (the one order of every writer), one conditional
    UPDATE per (from, to) state pair, the timeline entries in one flush.

    Used for the bulk moves of scan, deliver, confirm and promotion, where one UPDATE per
    message was most of the time a step took."""

    def __init__(self, session: Session, messages: Iterable[Message]) -> None:
        self._session = session
        self._messages = sorted(messages, key=lambda m: m.id)

    def move(self, step: Callable[[Lifecycle, Message], object]) -> list[Message]:
        """Call `step` with each message's lifecycle (e.g. `lambda life, m: life.submit(...)`),
        then write every step taken; returns the messages whose state moved."""
        taken: dict[str, list[Step]] = {}
        for message in self._messages:
            steps = taken[message.id] = []
            step(_lifecycle(message, steps.append), message)
        return _write_many(self._session, self._messages, taken)


def lifecycles(session: Session, messages: Iterable[Message]) -> Lifecycles:
    """The lifecycles of many message rows, written together (see `Lifecycles`)."""
    return Lifecycles(session, messages)


def _lifecycle(message: Message, store: Callable[[Step], None]) -> Lifecycle:
    facts = Facts(
        state=MessageState(message.state),
        attempts=message.attempts or 0,
        next_attempt_at=message.next_attempt_at,
        last_error=message.last_error,
        dst_tx_hash=message.dst_tx_hash,
        dst_block_number=message.dst_block_number,
    )
    return Lifecycle(facts, store, utcnow)


def _write_many(
    session: Session, messages: Sequence[Message], taken: dict[str, list[Step]]
) -> list[Message]:
    now = utcnow()
    # Locked before any of them is written, in id order (`messages` is sorted by id).
    _lock_rows(session, [m.id for m in messages if taken[m.id]])
    moved: list[Message] = []
    for (current, new), group in _set_fields(messages, taken, now).items():
        moved += _move_group(session, group, current, new, now)
    session.add_all(
        MessageEvent(message_id=m.id, state=s.after.state.value, at=now, detail=s.detail)
        for m in moved
        for s in taken[m.id]
        if s.moves
    )
    # Written now, while the moved rows are still held: the metrics read each delivered
    # message's route and birth from the session, and a row it no longer holds is a query.
    session.flush()
    return sorted(moved, key=lambda m: m.id)


def _set_fields(
    messages: Sequence[Message], taken: dict[str, list[Step]], now: datetime
) -> dict[tuple[MessageState, MessageState], list[Message]]:
    """Write the side fields the steps changed; the messages whose state moves, by move."""
    by_move: dict[tuple[MessageState, MessageState], list[Message]] = defaultdict(list)
    for message in messages:
        steps = taken[message.id]
        if not steps:
            continue
        first, last = steps[0].before, steps[-1].after
        for name in _OWNED:
            if getattr(last, name) != getattr(first, name):
                setattr(message, name, getattr(last, name))
        if last.state != first.state:
            by_move[(first.state, last.state)].append(message)
        else:
            message.updated_at = now
    return by_move


def _move_group(
    session: Session,
    group: list[Message],
    current: MessageState,
    new: MessageState,
    now: datetime,
) -> list[Message]:
    """One conditional UPDATE for messages making the same move; those it moved."""
    done = _move_rows(session, [m.id for m in group], current, new, now)
    moved = []
    for message in group:
        if message.id in done:
            set_committed_value(message, "state", new.value)
            set_committed_value(message, "updated_at", now)
            moved.append(message)
    _lost_races(session, [m for m in group if m.id not in done], new)
    return moved


def _lock_rows(session: Session, ids: list[str]) -> None:
    """Row locks in id order (Postgres; SQLite has one writer). `key_share`: FOR NO KEY
    UPDATE, which leaves inserting attestations and events for these rows free."""
    if ids:
        query = select(Message.id).where(Message.id.in_(ids)).order_by(Message.id)
        session.execute(query.with_for_update(key_share=True))


def _move_rows(
    session: Session, ids: list[str], current: MessageState, new: MessageState, now: datetime
) -> set[str]:
    moved = session.scalars(
        update(Message)
        .where(Message.id.in_(ids), Message.state == current.value)
        .values(state=new.value, updated_at=now)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return set(moved)


def _lost_races(session: Session, lost: list[Message], new: MessageState) -> None:
    """Other workers moved these rows first (their states read in one query): fine if to the
    same state, else an error."""
    if not lost:
        return
    query = select(Message.id, Message.state).where(Message.id.in_([m.id for m in lost]))
    states = {message_id: state for message_id, state in session.execute(query)}
    for message in lost:
        state = states.get(message.id)
        if state != new.value:
            raise IllegalTransitionError(
                f"message {message.id} became {state} meanwhile; not moved to {new.value}"
            )
        set_committed_value(message, "state", state)


def get_message(session: Session, message_id: str) -> Message:
    message = session.get(Message, normalize_id(message_id))
    if message is None:
        raise NotFoundError(f"no message with id {message_id}")
    return message


def normalize_id(value: str) -> str:
    text = value.lower()
    if not text.startswith("0x"):
        text = "0x" + text
    if len(text) != 66 or any(c not in "0123456789abcdef" for c in text[2:]):
        raise InvalidInputError(f"{value!r} is not a message id (32 bytes, hex)")
    return text


@dataclass(frozen=True)
class MessageFilter:
    state: str | None = None
    src_chain_id: int | None = None
    dst_chain_id: int | None = None
    sender: str | None = None
    src_tx_hash: str | None = None


def _page_token(message: Message) -> str:
    raw = json.dumps([message.created_at.isoformat(), message.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _after(token: str) -> tuple[datetime, str]:
    try:
        created, message_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(created), str(message_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("cursor is not one this API gave out") from exc


def _filtered(query: Select[Message], where: MessageFilter) -> Select[Message]:
    if where.state is not None:
        try:
            query = query.where(Message.state == MessageState(where.state).value)
        except ValueError:
            states = ", ".join(s.value for s in MessageState)
            raise InvalidInputError(f"state must be one of {states}") from None
    if where.src_chain_id is not None:
        query = query.where(Message.src_chain_id == where.src_chain_id)
    if where.dst_chain_id is not None:
        query = query.where(Message.dst_chain_id == where.dst_chain_id)
    if where.sender is not None:
        query = query.where(Message.sender == where.sender)
    if where.src_tx_hash is not None:
        query = query.where(Message.src_tx_hash == where.src_tx_hash.lower())
    return query


def list_messages(
    session: Session, where: MessageFilter, limit: int, cursor: str | None
) -> tuple[list[Message], str | None]:
    """Newest first, `limit` a page; the token continues after the last one shown."""
    query = _filtered(select(Message), where)
    if cursor:
        created, message_id = _after(cursor)
        query = query.where(
            (Message.created_at < created)
            | ((Message.created_at == created) & (Message.id < message_id))
        )
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_page_token(rows[-1]) if more and rows else None)


def transfers_by_tx(session: Session, src_tx_hash: str) -> list[Transfer]:
    """With each transfer's message and timeline in the same query (what the API shows)."""
    query = (
        select(Transfer)
        .join(Message, Transfer.message_id == Message.id)
        .where(Message.src_tx_hash == src_tx_hash.lower())
        .order_by(Message.src_log_index)
        .options(
            contains_eager(Transfer.message).options(
                joinedload(Message.events),
                lazyload(Message.attestations),
                lazyload(Message.refusals),
                lazyload(Message.transfer),
            ),
            defaultload(Transfer.asset).lazyload(Asset.deployments),
        )
    )
    return list(session.scalars(query).unique())


def message_view(session: Session, message_id: str) -> tuple[Message, dict[int, str], str | None]:
    """A message as the API shows it, in one query rather than one per relation and per
    registry table: the row with its timeline, attestations, refusals and transfer, and
    its chains' names and statuses and its route's status beside it. Returns the message,
    the names of its chains and why it may not move now (as `Pauses.reason`), or None."""
    query = _message_view_query()
    row = session.execute(query, {"message_id": normalize_id(message_id)}).unique().one_or_none()
    if row is None:
        raise NotFoundError(f"no message with id {message_id}")
    message, src_name, src_status, dst_name, dst_status, route_status = row
    ends = {
        message.src_chain_id: (src_name, src_status),
        message.dst_chain_id: (dst_name, dst_status),
    }
    names = {cid: str(name) for cid, (name, _) in ends.items() if name is not None}
    return message, names, _paused(message, ends, route_status)


@cache  # built once: making the aliases and subqueries cost more than running the query
def _message_view_query() -> Select[Any]:
    src, dst = aliased(Chain), aliased(Chain)
    on_src, on_dst = src.chain_id == Message.src_chain_id, dst.chain_id == Message.dst_chain_id
    route = select(Route.status).join(src, Route.src_chain_key == src.id)
    route = route.join(dst, Route.dst_chain_key == dst.id).where(on_src, on_dst)
    return (
        select(
            Message,
            select(src.name).where(on_src).scalar_subquery(),
            select(src.status).where(on_src).scalar_subquery(),
            select(dst.name).where(on_dst).scalar_subquery(),
            select(dst.status).where(on_dst).scalar_subquery(),
            route.scalar_subquery(),
        )
        .where(Message.id == bindparam("message_id"))
        .options(
            joinedload(Message.events),
            joinedload(Message.attestations),
            joinedload(Message.refusals),
            joinedload(Message.transfer).joinedload(Transfer.asset).lazyload(Asset.deployments),
        )
    )


def _paused(
    message: Message, ends: dict[int, tuple[str | None, str | None]], route: str | None
) -> str | None:
    """The first reason of `Pauses.reason`, from what `message_view` read."""
    for chain_id in (message.src_chain_id, message.dst_chain_id):
        name, status = ends[chain_id]
        if status is not None and status != ChainStatus.ACTIVE:
            return f"chain {name} is {status}"
    if route is not None and route != RouteStatus.ACTIVE:
        src, dst = ends[message.src_chain_id][0], ends[message.dst_chain_id][0]
        return f"route {src} -> {dst} is paused"
    asset = message.transfer.asset if message.transfer is not None else None
    if asset is not None and asset.status != AssetStatus.ACTIVE:
        return f"asset {asset.symbol} is paused"
    return None


def returned_in(session: Session, message_id: str) -> str | None:
    """The message that carries a returned transfer's tokens back, if there is one."""
    return session.scalar(
        select(Transfer.message_id).where(Transfer.returns_message_id == message_id)
    )


def get_transfer(session: Session, message_id: str) -> Transfer:
    transfer = session.get(Transfer, normalize_id(message_id))
    if transfer is None:
        raise NotFoundError(f"no transfer with message id {message_id}")
    return transfer


@dataclass(frozen=True)
class Pauses:
    """What is paused now (chains, routes, assets), to say whether a message may move."""

    chains: dict[int, str]
    routes: dict[tuple[int, int], str]
    assets: dict[int, str]

    @classmethod
    def load(cls, session: Session) -> Pauses:
        chains = {
            c.chain_id: f"chain {c.name} is {c.status}"
            for c in session.scalars(select(Chain).where(Chain.status != ChainStatus.ACTIVE))
        }
        routes = {
            (r.src.chain_id, r.dst.chain_id): f"route {r.src.name} -> {r.dst.name} is paused"
            for r in session.scalars(select(Route).where(Route.status != RouteStatus.ACTIVE))
        }
        assets = {
            a.id: f"asset {a.symbol} is paused"
            for a in session.scalars(select(Asset).where(Asset.status != AssetStatus.ACTIVE))
        }
        return cls(chains, routes, assets)

    def reason(self, message: Message) -> str | None:
        """Why this message may not move now, or None."""
        for chain_id in (message.src_chain_id, message.dst_chain_id):
            if chain_id in self.chains:
                return self.chains[chain_id]
        route = self.routes.get((message.src_chain_id, message.dst_chain_id))
        if route is not None:
            return route
        transfer = message.transfer
        if transfer is not None and transfer.asset_id in self.assets:
            return self.assets[transfer.asset_id]
        return None
