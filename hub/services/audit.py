"""The audit log: every write to the registry records who, what and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.db.models import AuditEntry


def record(session: Session, actor: str, action: str, target: str, **details: Any) -> None:
    session.add(AuditEntry(actor=actor, action=action, target=target, details=details))
