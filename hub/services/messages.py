"""Messages: where a message's lifecycle is written (its row, its timeline), and the queries
the API shows."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session
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
    facts = Facts(
        state=MessageState(message.state),
        attempts=message.attempts or 0,
        next_attempt_at=message.next_attempt_at,
        last_error=message.last_error,
        dst_tx_hash=message.dst_tx_hash,
        dst_block_number=message.dst_block_number,
    )
    return Lifecycle(facts, partial(_store, session, message), utcnow)


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
    query = (
        select(Transfer)
        .join(Message, Transfer.message_id == Message.id)
        .where(Message.src_tx_hash == src_tx_hash.lower())
        .order_by(Message.src_log_index)
    )
    return list(session.scalars(query))


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
