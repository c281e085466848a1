"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hub.api.deps import PolicyDep, SessionDep, SettingsDep
from hub.api.schemas import Alive, ReadyOut
from hub.services import chains as chain_svc

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Alive)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "The database or a chain does not answer"}},
)
def readyz(session: SessionDep, settings: SettingsDep, policy: PolicyDep) -> JSONResponse:
    """The database answers and every active chain is reachable; 503 otherwise."""
    checks: dict[str, Any] = {}
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    chains: dict[str, Any] = {}
    if checks["database"]["ok"]:
        for chain in chain_svc.list_chains(session):
            live = chain_svc.live_status(chain, min(settings.rpc_timeout, 2.0), policy)
            chains[chain.name] = {"ok": live.reachable, "head": live.head, "error": live.error}
    ready = checks["database"]["ok"] and all(c["ok"] for c in chains.values())
    body = {
        "status": "ready" if ready else "not ready",
        "database": checks["database"],
        "chains": chains,
    }
    return JSONResponse(body, status_code=200 if ready else 503)
