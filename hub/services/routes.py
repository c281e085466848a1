"""Routes: the directed pairs of chains that messages may cross."""

from __future__ import annotations

from itertools import permutations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Chain, Route
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
        select(Route).where(Route.src_chain_id == src_chain.id, Route.dst_chain_id == dst_chain.id)
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
        src_id = _live_chain(session, src, "src").id
        dst_id = _live_chain(session, dst, "dst").id
        exists = session.scalar(
            select(Route.id).where(Route.src_chain_id == src_id, Route.dst_chain_id == dst_id)
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
