"""Routes: the directed pairs of chains that messages may cross."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Asset, Chain, Route, RouteLimit
from hub.domain.errors import ConflictError, InvalidInputError, NotFoundError
from hub.domain.states import ChainStatus, RouteStatus
from hub.services import audit


def _live_chain(session: Session, name: str, field: str) -> Chain:
    chain = session.scalar(select(Chain).where(Chain.name == name))
    if chain is None:
        raise InvalidInputError(f"{field}: no chain named {name!r}", field=field)
    if chain.status == ChainStatus.RETIRED:
        raise InvalidInputError(f"{field}: chain {name!r} is retired", field=field)
    return chain


def create_route(session: Session, src: str, dst: str, actor: str) -> Route:
    if src == dst:
        raise InvalidInputError(f"a route needs two different chains, got {src!r} twice")
    src_chain = _live_chain(session, src, "src")
    dst_chain = _live_chain(session, dst, "dst")
    existing = session.scalar(
        select(Route).where(
            Route.src_chain_key == src_chain.id, Route.dst_chain_key == dst_chain.id
        )
    )
    if existing is not None:
        raise ConflictError(f"route {src} -> {dst} already exists (id {existing.id})")
    route = Route(src=src_chain, dst=dst_chain, status=RouteStatus.ACTIVE)
    session.add(route)
    session.flush()
    audit.record(session, actor, "route.create", f"route:{route.id}", src=src, dst=dst)
    return route


def connect_all(session: Session, names: list[str], actor: str) -> list[Route]:
    """A route between every ordered pair of the named chains that has none yet."""
    created = []
    for src, dst in permutations(names, 2):
        src_key = _live_chain(session, src, "src").id
        dst_key = _live_chain(session, dst, "dst").id
        exists = session.scalar(
            select(Route.id).where(Route.src_chain_key == src_key, Route.dst_chain_key == dst_key)
        )
        if exists is None:
            created.append(create_route(session, src, dst, actor))
    return created


def list_routes(session: Session) -> list[Route]:
    return list(session.scalars(select(Route).order_by(Route.id)))


def get_route(session: Session, route_id: int) -> Route:
    route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"no route with id {route_id}")
    return route


def set_route_paused(
    session: Session, route: Route, paused: bool, actor: str, reason: str | None
) -> Route:
    if not paused and ChainStatus.RETIRED in (route.src.status, route.dst.status):
        raise ConflictError(f"route {route.id} touches a retired chain and cannot resume")
    route.status = RouteStatus.PAUSED if paused else RouteStatus.ACTIVE
    route.status_reason = reason if paused else None
    route.status_by = actor if paused else None
    session.flush()
    action = "route.pause" if paused else "route.resume"
    audit.record(session, actor, action, f"route:{route.id}", reason=reason)
    return route


# The gateway refuses gas limits outside this range, so a cap outside it means nothing.
MIN_MAX_GAS, MAX_MAX_GAS = 10_000, 10_000_000
MAX_AMOUNT = 2**128 - 1  # what a bridge's bucket holds


def set_max_gas(session: Session, route: Route, max_gas: int, actor: str) -> Route:
    """The most gas one message on this route may ask for (its relayer pays it)."""
    if not MIN_MAX_GAS <= max_gas <= MAX_MAX_GAS:
        raise InvalidInputError(f"max_gas must be between {MIN_MAX_GAS} and {MAX_MAX_GAS}")
    route.max_gas = max_gas
    session.flush()
    audit.record(session, actor, "route.max_gas", f"route:{route.id}", max_gas=max_gas)
    return route


@dataclass(frozen=True)
class LimitSpec:
    asset: str
    capacity: int
    refill_per_second: int


def set_limit(session: Session, route: Route, spec: LimitSpec, actor: str) -> RouteLimit:
    """Record the rate limit both bridges of the route must enforce for an asset (outbound on
    the source, inbound on the destination); the guardian stage applies it on-chain."""
    asset = session.scalar(select(Asset).where(Asset.symbol == spec.asset))
    if asset is None:
        raise InvalidInputError(f"limit.asset: no asset with symbol {spec.asset!r}")
    ends = {route.src_chain_key, route.dst_chain_key}
    if not ends <= {asset.home_chain_key, *(d.chain_key for d in asset.deployments)}:
        raise InvalidInputError(f"{spec.asset} is not on both chains of route {route.id}")
    for name, value in (("capacity", spec.capacity), ("refill_per_second", spec.refill_per_second)):
        if not 0 <= value <= MAX_AMOUNT:
            raise InvalidInputError(f"limit.{name} must be between 0 and 2**128 - 1")
    row = session.scalar(
        select(RouteLimit).where(RouteLimit.route_id == route.id, RouteLimit.asset_id == asset.id)
    )
    if row is None:
        row = RouteLimit(route_id=route.id, asset_id=asset.id)
        session.add(row)
    row.capacity, row.refill_per_second = str(spec.capacity), str(spec.refill_per_second)
    row.set_by, row.last_error = actor, None
    session.flush()
    session.refresh(route, ["limits"])
    audit.record(
        session,
        actor,
        "route.limit",
        f"route:{route.id}",
        asset=spec.asset,
        capacity=str(spec.capacity),
        refill_per_second=str(spec.refill_per_second),
    )
    return row
