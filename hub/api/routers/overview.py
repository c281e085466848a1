"""/v1/status, /v1/search and the live feed /v1/feed (server-sent events)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hub.api.deps import PolicyDep, SessionDep, SettingsDep
from hub.api.errors import refusals
from hub.api.routers.messages import chain_names
from hub.api.schemas import MessageOut
from hub.api.views import FeedEventOut, SearchOut, StatusOut
from hub.db.models import Chain, Message, MessageEvent
from hub.domain.errors import InvalidInputError
from hub.services import messages as msg_svc
from hub.services import overview as svc

router = APIRouter(tags=["overview"])

FEED_POLL_SECONDS = 0.5
FEED_KEEPALIVE_SECONDS = 15.0
# A stream ends after this long and the client reconnects where it was (Last-Event-ID):
# open streams never hold a stopping server for long.
FEED_MAX_SECONDS = 120.0
LIVE_TIMEOUT = 2.0


@router.get("/v1/status", response_model=StatusOut)
def status(session: SessionDep, settings: SettingsDep, policy: PolicyDep) -> StatusOut:
    """Chains (head read live, finality and scan lag), routes (deliveries in the last ten
    minutes, messages in flight, pauses), assets, the backlog per state and open alerts."""
    found = svc.overview(session, min(settings.rpc_timeout, LIVE_TIMEOUT), policy)
    return StatusOut.of(found)


@router.get("/v1/search", response_model=SearchOut, responses=refusals(422))
def search(
    session: SessionDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=80,
            description="a message id, a transaction hash (source or delivery) or an address",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SearchOut:
    """The messages a message id, a transaction hash or an address names, newest first."""
    found = svc.search(session, q, limit)
    names, pauses = chain_names(session), msg_svc.Pauses.load(session)
    items = [MessageOut.of(m, names, pauses.reason(m)) for m in found.messages]
    return SearchOut(query=q, kind=found.kind, messages=items)


# Streams are left out of the OpenAPI document (a client reading it cannot follow a stream
# that never ends); README and docs/runbook.md describe it.
@router.get("/v1/feed", include_in_schema=False)
async def feed(
    request: Request,
    message_id: Annotated[str | None, Query(pattern=r"^(0x)?[0-9a-fA-F]{64}$")] = None,
    chain: Annotated[str | None, Query(max_length=64)] = None,
    backlog: Annotated[int, Query(ge=0, le=500)] = 0,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Server-sent events, one per message entering a state (`event: state`, `id:` the event
    id, `data:` a FeedEventOut). `backlog=N` first sends the last N events; `after` (or the
    Last-Event-ID header a reconnecting EventSource sends) resumes after an event id."""
    sessions: sessionmaker[Session] = request.app.state.sessionmaker
    where = await run_in_threadpool(_filter, sessions, message_id, chain)
    resume = after if after is not None else _event_id(last_event_id)
    stream = _stream(request, sessions, where, backlog, resume)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


def _event_id(header: str | None) -> int | None:
    return int(header) if header and header.isdigit() else None


def _filter(
    sessions: sessionmaker[Session], message_id: str | None, chain: str | None
) -> svc.FeedFilter:
    with sessions() as session:
        chain_id = None
        if chain is not None:
            chain_id = int(chain) if chain.isdigit() else None
            if chain_id is None:
                chain_id = session.scalar(select(Chain.chain_id).where(Chain.name == chain))
                if chain_id is None:
                    raise InvalidInputError(f"chain: no chain named {chain!r}")
        ident = msg_svc.normalize_id(message_id) if message_id else None
        return svc.FeedFilter(message_id=ident, chain_id=chain_id)


class _Viewer:
    """One open stream: its cursor in the events and what it asked to see."""

    def __init__(self, sessions: sessionmaker[Session], where: svc.FeedFilter) -> None:
        self.sessions, self.where = sessions, where
        self.cursor: svc.FeedCursor | None = None

    def start(self, backlog: int, resume: int | None) -> list[str]:
        with self.sessions() as session:
            if resume is not None:
                self.cursor = svc.FeedCursor(session, resume)
                return self._frames(session, self.cursor.poll(session, self.where))
            self.cursor = svc.FeedCursor(session, svc.latest_event_id(session))
            recent = svc.recent_events(session, backlog, self.where) if backlog else []
            # An event committed between the two reads is in the backlog: never send it twice.
            self.cursor.skip(e.id for e, _ in recent)
            return self._frames(session, recent)

    def poll(self) -> list[str]:
        assert self.cursor is not None
        with self.sessions() as session:
            return self._frames(session, self.cursor.poll(session, self.where))

    @staticmethod
    def _frames(session: Session, rows: list[tuple[MessageEvent, Message]]) -> list[str]:
        if not rows:
            return []
        names = chain_names(session)
        return [_frame(FeedEventOut.of(e, m, names)) for e, m in rows]


def _frame(item: FeedEventOut) -> str:
    data = json.dumps(item.model_dump(mode="json"), separators=(",", ":"))
    return f"id: {item.event_id}\nevent: state\ndata: {data}\n\n"


async def _stream(
    request: Request,
    sessions: sessionmaker[Session],
    where: svc.FeedFilter,
    backlog: int,
    resume: int | None,
) -> AsyncIterator[str]:
    viewer = _Viewer(sessions, where)
    yield "retry: 1000\n: connected\n\n"
    for frame in await run_in_threadpool(viewer.start, backlog, resume):
        yield frame
    assert viewer.cursor is not None
    yield f"id: {viewer.cursor.last}\n\n"  # where a reconnecting client resumes
    started = quiet_since = time.monotonic()
    while time.monotonic() - started < FEED_MAX_SECONDS:
        if await request.is_disconnected():
            return
        frames = await run_in_threadpool(viewer.poll)
        for frame in frames:
            yield frame
        if frames:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > FEED_KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(FEED_POLL_SECONDS)
