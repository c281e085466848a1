"""Alerts: what an operator must see (a deep reorg, a supply mismatch, a stuck transaction)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Alert, utcnow

log = logging.getLogger("hub.alerts")


def raise_alert(session: Session, kind: str, subject: str, message: str) -> Alert:
    """One open alert per kind and subject; raising it again keeps the first."""
    open_alert = session.scalar(
        select(Alert).where(
            Alert.kind == kind, Alert.subject == subject, Alert.resolved_at.is_(None)
        )
    )
    if open_alert is not None:
        return open_alert
    alert = Alert(kind=kind, subject=subject, message=message)
    session.add(alert)
    log.warning("alert", extra={"kind": kind, "subject": subject, "detail": message})
    return alert


def open_alerts(session: Session) -> list[Alert]:
    return list(
        session.scalars(select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.id))
    )


def resolve(session: Session, kind: str, subject: str) -> None:
    """Close the open alert of this kind and subject, if there is one."""
    for alert in session.scalars(
        select(Alert).where(
            Alert.kind == kind, Alert.subject == subject, Alert.resolved_at.is_(None)
        )
    ):
        alert.resolved_at = utcnow()
