"""/v1/chains: register, read, change and retire chains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from adapters.base import FinalityPolicy
from hub.api.deps import AdminDep, PolicyDep, SessionDep, SettingsDep, commit
from hub.api.errors import BODY, WRITE, refusals
from hub.api.schemas import ChainCreate, ChainOut, ChainPatch, LiveOut, RelayStateOut
from hub.db.models import Chain, Cursor, ValidatorSet
from hub.services import chains as svc

router = APIRouter(prefix="/v1/chains", tags=["chains"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChainOut,
    responses=refusals(*WRITE, BODY),
)
def register_chain(
    body: ChainCreate,
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    principal: AdminDep,
) -> ChainOut:
    """Register a chain after checking its RPC URLs and contracts against the chain itself."""
    spec = svc.ChainSpec(
        name=body.name,
        chain_id=body.chain_id,
        family=body.family,
        rpc_urls=body.rpc_urls,
        finality=FinalityPolicy.parse(body.finality),
        gateway_address=body.gateway_address,
        bridge_address=body.bridge_address,
    )
    chain = svc.register_chain(session, spec, principal.actor, policy, settings.rpc_timeout)
    commit(session)
    return ChainOut.of(chain)


@router.get("", response_model=list[ChainOut], responses=refusals(422))
def list_chains(session: SessionDep, include_retired: bool = False) -> list[ChainOut]:
    return [ChainOut.of(c) for c in svc.list_chains(session, include_retired)]


@router.get("/{name}", response_model=ChainOut, responses=refusals(404, 422))
def get_chain(name: str, session: SessionDep, settings: SettingsDep, policy: PolicyDep) -> ChainOut:
    """A chain with its live head and finalized block, as the chain reports them now."""
    chain = svc.get_chain(session, name)
    live = svc.live_status(chain, settings.rpc_timeout, policy)
    return ChainOut.of(chain, LiveOut(**live.__dict__), _relay_state(session, chain))


def _relay_state(session: Session, chain: Chain) -> RelayStateOut | None:
    cursor = session.get(Cursor, chain.id)
    if cursor is None:
        return None
    vset = session.get(ValidatorSet, chain.id)
    return RelayStateOut(
        start_block=cursor.start_block,
        cursor_block=cursor.block_number,
        settled_block=cursor.settled_block,
        validator_epoch=vset.epoch if vset else None,
        validator_threshold=vset.threshold if vset else None,
        validators=vset.validators if vset else [],
    )


@router.patch("/{name}", response_model=ChainOut, responses=refusals(404, *WRITE, BODY))
def update_chain(
    name: str,
    body: ChainPatch,
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    principal: AdminDep,
) -> ChainOut:
    """Pause or resume a chain, or replace its RPC URLs or finality policy."""
    chain = svc.get_chain(session, name)
    change = svc.ChainChange(
        paused=body.paused,
        reason=body.reason,
        rpc_urls=body.rpc_urls,
        finality=FinalityPolicy.parse(body.finality) if body.finality is not None else None,
    )
    svc.update_chain(session, chain, change, principal.actor, policy, settings.rpc_timeout)
    commit(session)
    return ChainOut.of(chain)


@router.delete("/{name}", response_model=ChainOut, responses=refusals(404, *WRITE))
def retire_chain(
    name: str,
    session: SessionDep,
    principal: AdminDep,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> ChainOut:
    """Retire a chain: it stays in the registry for history, and its routes are paused."""
    chain = svc.retire_chain(session, svc.get_chain(session, name), principal.actor, reason)
    commit(session)
    return ChainOut.of(chain)
