"""Whether the relayer can pay for a delivery: checked before one is signed, so a relayer
out of funds makes messages wait (attested) with one clear alert, instead of recording
transactions no node will accept; delivery resumes by itself once it is funded."""

from __future__ import annotations

from sqlalchemy.orm import Session

from adapters.base import Submitter
from hub.db.models import Chain
from hub.domain.states import AlertKind
from hub.services import alerts

KIND = AlertKind.RELAYER_FUNDS


def can_pay(session: Session, chain: Chain, adapter: Submitter, relayer: str, cost: int) -> bool:
    """True when the relayer holds `cost` (wei) on the chain; else an alert, once."""
    held = adapter.native_balance(relayer)
    subject = f"relayer:{chain.name}:{relayer}"
    if held >= cost:
        alerts.resolve(session, KIND, subject)
        return True
    alerts.raise_alert(
        session,
        KIND,
        subject,
        f"relayer {relayer} cannot pay for deliveries on {chain.name}: it holds {held} wei, "
        f"a delivery needs up to {cost} wei; messages to {chain.name} wait until it is funded",
    )
    return False
