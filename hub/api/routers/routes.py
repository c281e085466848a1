"""/v1/routes: the directed pairs of chains messages may cross, their gas cap per message and
the rate limits their bridges enforce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, status

from adapters.base import AdapterError, BridgeOperator, RateLimit
from hub.api.deps import AdminDep, OperatorDep, PolicyDep, SessionDep, SettingsDep, commit
from hub.api.errors import BODY, WRITE, refusals
from hub.api.schemas import BucketOut, LimitOut, RouteCreate, RouteOut, RoutePatch
from hub.db.models import Chain, Route, RouteLimit
from hub.domain.errors import CheckFailedError, ForbiddenError
from hub.services import routes as svc
from hub.services.chains import chain_adapter
from hub.services.keys import Role
from hub.services.netpolicy import NetworkPolicy
from hub.services.relay.guardian import bridge_limits

router = APIRouter(prefix="/v1/routes", tags=["routes"])
RouteId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RouteOut,
    responses=refusals(*WRITE, BODY),
)
def create_route(body: RouteCreate, session: SessionDep, principal: AdminDep) -> RouteOut:
    route = svc.create_route(session, body.src, body.dst, principal.actor)
    commit(session)
    return RouteOut.of(route)


@router.get("", response_model=list[RouteOut])
def list_routes(session: SessionDep) -> list[RouteOut]:
    return [RouteOut.of(r) for r in svc.list_routes(session)]


@router.get("/{route_id}", response_model=RouteOut, responses=refusals(404, 422))
def get_route(
    route_id: RouteId, session: SessionDep, settings: SettingsDep, policy: PolicyDep
) -> RouteOut:
    """A route, with each rate limit as both bridges hold it now (read live)."""
    route = svc.get_route(session, route_id)
    reader = _Reader(settings.rpc_timeout, policy)
    limits = [LimitOut.of(row, _buckets(route, row, reader)) for row in route.limits]
    return RouteOut.of(route, limits)


@dataclass(frozen=True)
class _Reader:
    timeout: float
    policy: NetworkPolicy


def _buckets(route: Route, row: RouteLimit, reader: _Reader) -> list[BucketOut]:
    found = []
    for chain in (route.src, route.dst):
        for limit in bridge_limits(row, chain):
            found.append(_bucket(chain.name, _read(chain, limit, reader)))
    return found


def _read(chain: Chain, limit: RateLimit, reader: _Reader) -> tuple[RateLimit, int | None]:
    adapter = chain_adapter(chain, reader.timeout, reader.policy)
    if not isinstance(adapter, BridgeOperator):
        raise CheckFailedError(f"the {adapter.family} adapter cannot read a token bridge")
    try:
        state = adapter.rate_limit(
            chain.bridge_address, limit.remote_chain_id, limit.token, limit.outbound
        )
    except AdapterError as exc:  # the adapter names only redacted URLs
        raise CheckFailedError(f"could not read the bridge on {chain.name}: {exc}") from None
    available = state.available if state.limit.limited else None
    return state.limit, available


def _bucket(chain: str, held: tuple[RateLimit, int | None]) -> BucketOut:
    limit, available = held
    return BucketOut(
        chain=chain,
        outbound=limit.outbound,
        capacity=str(limit.capacity),
        refill_per_second=str(limit.refill_per_second),
        available=None if available is None else str(available),
    )


@router.patch("/{route_id}", response_model=RouteOut, responses=refusals(404, *WRITE, BODY))
def update_route(
    route_id: RouteId, body: RoutePatch, session: SessionDep, principal: OperatorDep
) -> RouteOut:
    """Pause or resume a route (operators may: pausing is an emergency brake); set its gas cap
    per message or a rate limit for an asset (admins: the guardian applies it on-chain)."""
    if (body.max_gas is not None or body.limit is not None) and not principal.may(Role.ADMIN):
        raise ForbiddenError(f"max_gas and limit need the admin role; the key has {principal.role}")
    route = svc.get_route(session, route_id)
    if body.paused is not None:
        svc.set_route_paused(session, route, body.paused, principal.actor, body.reason)
    if body.max_gas is not None:
        svc.set_max_gas(session, route, body.max_gas, principal.actor)
    if body.limit is not None:
        spec = svc.LimitSpec(
            body.limit.asset, int(body.limit.capacity), int(body.limit.refill_per_second)
        )
        svc.set_limit(session, route, spec, principal.actor)
    commit(session)
    return RouteOut.of(route)
