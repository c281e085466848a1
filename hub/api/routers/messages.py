"""/v1/messages and /v1/transfers: where every message and transfer stands."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hub.api.deps import OperatorDep, SessionDep, commit, read_sessions
from hub.api.errors import BODY, WRITE, refusals
from hub.api.schemas import (
    AttestationAccepted,
    AttestationIn,
    MessageOut,
    MessagePage,
    TransferOut,
)
from hub.db.models import Chain
from hub.domain.errors import InvalidInputError
from hub.services import messages as svc
from hub.services.relay.attestations import record_attestation
from hub.services.relay.retry import request_return, retry_message

router = APIRouter(tags=["messages"])
MessageId = Annotated[str, Path(pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="32 bytes, hex")]


def chain_names(session: Session) -> dict[int, str]:
    return {cid: name for cid, name in session.execute(select(Chain.chain_id, Chain.name))}


def _chain_id(session: Session, value: str | None, field: str) -> int | None:
    """A chain given by name or by chain id."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    found = session.scalar(select(Chain.chain_id).where(Chain.name == value))
    if found is None:
        raise InvalidInputError(f"{field}: no chain named {value!r}")
    return int(found)


@router.get("/v1/messages", response_model=MessagePage, responses=refusals(422))
def list_messages(
    session: SessionDep,
    state: Annotated[str | None, Query(max_length=16)] = None,
    src: Annotated[str | None, Query(max_length=64, description="source chain name or id")] = None,
    dst: Annotated[
        str | None, Query(max_length=64, description="destination chain name or id")
    ] = None,
    sender: Annotated[str | None, Query(max_length=64)] = None,
    src_tx_hash: Annotated[str | None, Query(max_length=66)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=256, description="from next_cursor")] = None,
) -> MessagePage:
    """Messages, newest first, filtered; follow `next_cursor` for the next page."""
    where = svc.MessageFilter(
        state=state,
        src_chain_id=_chain_id(session, src, "src"),
        dst_chain_id=_chain_id(session, dst, "dst"),
        sender=sender,
        src_tx_hash=src_tx_hash,
    )
    rows, next_cursor = svc.list_messages(session, where, limit, cursor)
    names, pauses = chain_names(session), svc.Pauses.load(session)
    items = [MessageOut.of(m, names, pauses.reason(m)) for m in rows]
    return MessagePage(items=items, next_cursor=next_cursor)


@router.get("/v1/messages/{message_id}", response_model=MessageOut, responses=refusals(404, 422))
async def get_message(message_id: MessageId, request: Request) -> Response:
    """A message's state, timeline, transactions, attestations and last error."""
    body = await run_in_threadpool(_message_json, read_sessions(request), message_id)
    return Response(body, media_type="application/json")


def _message_json(factory: sessionmaker[Session], message_id: str) -> bytes:
    # The session opens and closes in this one call: a hot read holds its connection only
    # while it reads (a request-scoped session held it until after the response was sent,
    # and under load every connection waited there while the threads waited for one). The
    # body is the model's own JSON: FastAPI would validate the model a second time.
    with factory() as session:
        message, names, paused = svc.message_view(session, message_id)
        return MessageOut.of(message, names, paused).model_dump_json().encode()


@router.post(
    "/v1/messages/{message_id}/attestations",
    status_code=status.HTTP_201_CREATED,
    response_model=AttestationAccepted,
    responses=refusals(404, 409, 422, BODY),
)
def post_attestation(
    message_id: MessageId, body: AttestationIn, session: SessionDep
) -> AttestationAccepted:
    """A validator's signature; kept only if it recovers to a member of the current set."""
    message = svc.get_message(session, message_id)
    signer = record_attestation(session, message, bytes.fromhex(body.signature[2:]))
    commit(session)
    return AttestationAccepted(message_id=message.id, signer=signer, state=message.state)


@router.post(
    "/v1/messages/{message_id}/retry",
    response_model=MessageOut,
    responses=refusals(404, *WRITE),
)
def retry(message_id: MessageId, session: SessionDep, principal: OperatorDep) -> MessageOut:
    """Put a failed (or rejected) message back in line, attempts from zero."""
    message = retry_message(session, svc.get_message(session, message_id), principal.actor)
    commit(session)
    paused = svc.Pauses.load(session).reason(message)
    return MessageOut.of(message, chain_names(session), paused)


@router.get("/v1/transfers", response_model=list[TransferOut], responses=refusals(422))
async def list_transfers(
    request: Request,
    src_tx_hash: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{64}$")],
) -> Response:
    """The transfers a source transaction made."""
    body = await run_in_threadpool(_transfers_json, read_sessions(request), src_tx_hash)
    return Response(body, media_type="application/json")


_TRANSFERS = TypeAdapter(list[TransferOut])


def _transfers_json(factory: sessionmaker[Session], src_tx_hash: str) -> bytes:
    with factory() as session:  # one call, and the body as JSON, as in _message_json
        names = chain_names(session)
        found = [TransferOut.of(t, names) for t in svc.transfers_by_tx(session, src_tx_hash)]
        return _TRANSFERS.dump_json(found)


@router.get("/v1/transfers/{message_id}", response_model=TransferOut, responses=refusals(404, 422))
def get_transfer(message_id: MessageId, session: SessionDep) -> TransferOut:
    transfer = svc.get_transfer(session, message_id)
    back = svc.returned_in(session, transfer.message_id)
    return TransferOut.of(transfer, chain_names(session), back)


@router.post(
    "/v1/transfers/{message_id}/return",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TransferOut,
    responses=refusals(404, *WRITE),
)
def return_transfer(
    message_id: MessageId, session: SessionDep, principal: OperatorDep
) -> TransferOut:
    """Send a failed transfer back to its sender on the source chain (the guardian does it
    on-chain; follow `return_tx_hash`, then the state `returned` and `returned_in`)."""
    message = svc.get_message(session, message_id)
    transfer = request_return(session, message, principal.actor)
    commit(session)
    return TransferOut.of(transfer, chain_names(session))
