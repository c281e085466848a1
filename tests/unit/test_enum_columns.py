"""Statuses stored as text read back as their enum; the stored strings are the old ones."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from hub.db.models import Base, Delivery
from hub.domain.states import DeliveryTxStatus


def _delivery(status: str) -> Delivery:
    return Delivery(
        dst_chain_id=1,
        relayer="0xr",
        tx_nonce=0,
        tx_hash="0x" + status,
        raw_tx=b"",
        gas=1,
        max_fee="1",
        priority_fee="1",
        message_ids=[],
        status=status,
    )


def test_a_status_is_stored_as_its_old_string_and_read_as_the_enum() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(_delivery(DeliveryTxStatus.SUPERSEDED))
        session.commit()
        stored = session.execute(text("SELECT status FROM deliveries")).scalar_one()
        assert stored == "superseded" and type(stored) is str
        row = session.get(Delivery, 1)
        assert row is not None and row.status is DeliveryTxStatus.SUPERSEDED
        session.add(_delivery("mined-ish"))
        with pytest.raises(StatementError, match="mined-ish"):
            session.commit()
