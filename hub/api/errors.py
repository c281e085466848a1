"""The one error shape, `{"error": {"code", "message", "details"}}`, and the refusals each
operation declares in the OpenAPI document, so that the schema tells clients the truth."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.routing import Match

from hub.api.schemas import ErrorOut

_MEANINGS = {
    401: "No API key, a malformed Authorization header, or an unknown or revoked key",
    403: "The API key's role may not do this",
    404: "No such resource",
    409: "Conflicts with the resource's state or with an existing record",
    413: "The request body is larger than the hub accepts (HUB_MAX_BODY_BYTES)",
    422: "Invalid input, or input the chain contradicts",
    502: "A chain failed or refused a transaction the hub sent (what was done before stays)",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error shape and what it means."""
    return {s: {"model": ErrorOut, "description": _MEANINGS[s]} for s in statuses}


# The refusals every write with an API key can meet; add 404 where a path names a resource,
# and BODY where the operation takes a request body.
WRITE = (401, 403, 409, 422)
BODY = 413


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method the path supports. Starlette's 405 names only the first route that
    matched the path, and FastAPI makes one route per operation: ask the routes about each
    method in turn."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    return ", ".join(allowed)
