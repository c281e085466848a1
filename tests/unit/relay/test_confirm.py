"""Confirm: a mined delivery settles each message by its own outcome; a recipient's revert is
a failed attempt with a backoff, then parked; a stuck transaction is replaced."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from hub.db.models import Delivery
from hub.services.relay.confirm import ConfirmReport
from tests.unit.relay.conftest import World, make_world


def test_a_mined_delivery_marks_its_messages_delivered(world: World) -> None:
    message_id = world.attested()
    sent = world.run("deliver", "beta")
    report: ConfirmReport = world.run("confirm", "beta")
    assert report.mined == 1
    message = world.message(message_id)
    assert (message.state, message.dst_tx_hash) == ("delivered", sent.tx_hash)
    assert message.dst_block_number == world.beta.head
    with world.session() as session:
        assert [d.status for d in session.scalars(select(Delivery))] == ["mined"]
    assert world.run("confirm", "beta").mined == 0  # nothing open any more


def test_a_recipient_revert_is_retried_with_backoff_then_parked(tmp_path: Path) -> None:
    world = make_world(tmp_path, max_attempts=2, retry_base_seconds=0.05)
    message_id = world.attested()
    world.beta.recipient_reverts[bytes.fromhex(message_id[2:])] = "Refused()"
    world.run("deliver", "beta")
    world.run("confirm", "beta")
    failed = world.message(message_id)
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert failed.last_error == "recipient reverted: Refused()"
    assert failed.next_attempt_at is not None  # retried after its backoff
    time.sleep(0.1)
    assert world.run("deliver", "beta").sent == 1  # the retry is sent from failed
    world.run("confirm", "beta")
    parked = world.message(message_id)
    assert (parked.state, parked.attempts, parked.next_attempt_at) == ("failed", 2, None)
    assert world.timeline(message_id)[-3:] == ["failed", "submitted", "failed"]
    time.sleep(0.1)
    assert world.run("deliver", "beta").sent == 0  # parked: an operator retries it


def test_a_stuck_transaction_is_replaced_with_a_higher_fee(tmp_path: Path) -> None:
    world = make_world(tmp_path, stuck_after_seconds=0.01)
    message_id = world.attested()
    world.beta.automine = False
    first = world.run("deliver", "beta")
    time.sleep(0.05)
    report: ConfirmReport = world.run("confirm", "beta")
    assert report.replaced == 1
    with world.session() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
    assert [r.status for r in rows] == ["superseded", "pending"]
    assert int(rows[1].max_fee) > int(rows[0].max_fee) and rows[1].tx_nonce == rows[0].tx_nonce
    assert world.message(message_id).dst_tx_hash == rows[1].tx_hash != first.tx_hash
    world.beta.mine(1)  # the node mines the first one it had
    assert world.run("confirm", "beta").mined == 1
    assert world.message(message_id).state == "delivered"
    with world.session() as session:
        statuses = [r.status for r in session.scalars(select(Delivery).order_by(Delivery.id))]
    assert statuses == ["mined", "replaced"]
