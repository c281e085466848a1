"""/v1/routes: the directed pairs of chains messages may cross."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from hub.api.deps import AdminDep, OperatorDep, SessionDep, commit
from hub.api.errors import BODY, WRITE, refusals
from hub.api.schemas import RouteCreate, RouteOut, RoutePatch
from hub.services import routes as svc

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
def get_route(route_id: RouteId, session: SessionDep) -> RouteOut:
    return RouteOut.of(svc.get_route(session, route_id))


@router.patch("/{route_id}", response_model=RouteOut, responses=refusals(404, *WRITE, BODY))
def update_route(
    route_id: RouteId, body: RoutePatch, session: SessionDep, principal: OperatorDep
) -> RouteOut:
    """Pause or resume a route (operators may: pausing is an emergency brake)."""
    route = svc.get_route(session, route_id)
    svc.set_route_paused(session, route, body.paused, principal.actor, body.reason)
    commit(session)
    return RouteOut.of(route)
