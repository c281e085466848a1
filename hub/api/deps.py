"""Request-scoped dependencies: settings, the session, the caller's role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.domain.errors import ConflictError, ForbiddenError, UnauthorizedError
from hub.services.keys import Principal, Role, authenticate
from hub.services.netpolicy import NetworkPolicy
from hub.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def read_sessions(request: Request) -> sessionmaker[Session]:
    """Sessions for reads that open and close in one call, each statement on its own (no
    transaction around them): never for writes."""
    factory: sessionmaker[Session] = request.app.state.read_sessionmaker
    return factory


def get_session(request: Request) -> Iterator[Session]:
    """A session whose writes count only if the endpoint calls `commit`; else rolled back."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        yield session


def commit(session: Session) -> None:
    """End the request's one transaction; a constraint lost to a concurrent write is a 409."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"conflicts with an existing record: {exc.orig}") from None


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_policy(settings: SettingsDep) -> NetworkPolicy:
    return NetworkPolicy.from_settings(settings)


PolicyDep = Annotated[NetworkPolicy, Depends(get_policy)]


# Declares the bearer scheme in the OpenAPI document; refusals stay ours (one error shape).
_bearer = HTTPBearer(auto_error=False, description="An API key: Authorization: Bearer <key>")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require(
    role: Role,
) -> Callable[[HTTPAuthorizationCredentials | None, Session, Settings], Principal]:
    """A dependency that admits callers whose key grants `role`."""

    def dependency(bearer: BearerDep, session: SessionDep, settings: SettingsDep) -> Principal:
        token = bearer.credentials.strip() if bearer else ""
        if not token:
            raise UnauthorizedError("this needs an API key: Authorization: Bearer <key>")
        admin = settings.admin_token.get_secret_value() if settings.admin_token else None
        principal = authenticate(session, token, admin)
        if principal is None:
            raise UnauthorizedError("unknown or revoked API key")
        if not principal.may(role):
            raise ForbiddenError(f"this needs the {role.value} role; the key has {principal.role}")
        return principal

    return dependency


AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
