"""/v1/alerts: what an operator must look at now."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.deps import SessionDep
from hub.api.schemas import AlertOut
from hub.services.alerts import open_alerts

router = APIRouter(tags=["alerts"])


@router.get("/v1/alerts", response_model=list[AlertOut])
def list_alerts(session: SessionDep) -> list[AlertOut]:
    return [
        AlertOut(id=a.id, kind=a.kind, subject=a.subject, message=a.message, at=a.at)
        for a in open_alerts(session)
    ]
