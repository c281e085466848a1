"""Deliver: attested messages go out in a recorded batch; one that would revert is set aside
with its reason and a backoff; what passes with time waits; a relayer without funds waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from hub.db.models import Alert, Delivery, Route
from hub.services.relay.deliver import DeliverReport
from tests.unit.relay.conftest import RELAYER, World, make_world


def test_a_batch_is_recorded_then_sent(world: World) -> None:
    ids = [world.attested(b"one"), world.attested(b"two")]
    report: DeliverReport = world.run("deliver", "beta")
    assert report.sent == 2 and report.tx_hash is not None
    with world.session() as session:
        (tx,) = session.scalars(select(Delivery))
        assert (tx.status, sorted(tx.message_ids), tx.relayer) == (
            "pending",
            sorted(ids),
            RELAYER.address,
        )
    for message_id in ids:
        message = world.message(message_id)
        assert (message.state, message.dst_tx_hash) == ("submitted", report.tx_hash)
        assert world.timeline(message_id)[-1] == "submitted"
    assert all(world.beta.delivered)  # sent after the commit: the fake chain mined it
    assert world.run("deliver", "beta").sent == 0  # nothing left to send


def test_a_message_that_would_revert_is_set_aside_not_in_the_way(world: World) -> None:
    bad, good = world.attested(b"bad"), world.attested(b"good")
    world.beta.simulation_reverts[bytes.fromhex(bad[2:])] = "Refused()"
    before = datetime.now(UTC)
    report: DeliverReport = world.run("deliver", "beta")
    assert report.sent == 1
    assert world.message(good).state == "submitted"
    failed = world.message(bad)
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert failed.last_error == "simulation reverted: Refused()"
    base = world.ctx.settings.retry_base_seconds
    assert failed.next_attempt_at is not None
    assert before + timedelta(seconds=base) <= failed.next_attempt_at
    assert failed.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=base * 1.5)


def test_a_rate_limited_message_waits_without_an_attempt(world: World) -> None:
    message_id = world.attested()
    world.beta.simulation_reverts[bytes.fromhex(message_id[2:])] = "RateLimited(5)"
    assert world.run("deliver", "beta").sent == 0
    message = world.message(message_id)
    assert (message.state, message.attempts, message.last_error) == (
        "attested",
        0,
        "simulation reverted: RateLimited(5)",
    )
    assert message.next_attempt_at is not None and message.next_attempt_at > datetime.now(UTC)


def test_a_relayer_without_funds_waits_with_an_alert(world: World) -> None:
    message_id = world.attested()
    world.beta.fund(RELAYER.address, 1)
    report: DeliverReport = world.run("deliver", "beta")
    assert (report.sent, report.note) == (0, "the relayer cannot pay for a delivery")
    assert world.message(message_id).state == "attested"
    with world.session() as session:
        assert [a.kind for a in session.scalars(select(Alert))] == ["relayer_funds"]
        assert session.scalar(select(Delivery)) is None  # nothing recorded


def test_a_paused_route_holds_its_messages(world: World) -> None:
    message_id = world.attested()
    with world.session() as session, session.begin():
        for route in session.scalars(select(Route)):
            route.status = "paused"
    assert world.run("deliver", "beta").sent == 0
    assert world.message(message_id).state == "attested"


def test_a_step_pipelines_full_batches_each_recorded_then_sent(tmp_path: Path) -> None:
    world = make_world(tmp_path, batch_size=2, max_in_flight=3)
    ids = [world.attested(bytes([i])) for i in range(5)]
    world.beta.automine = False  # the transactions stay in flight
    report: DeliverReport = world.run("deliver", "beta")
    assert report.sent == 5  # 2 + 2 + 1: three rounds, three nonces
    with world.session() as session:
        txs = session.scalars(select(Delivery).order_by(Delivery.tx_nonce)).all()
        assert [len(tx.message_ids) for tx in txs] == [2, 2, 1]
        assert [tx.tx_nonce for tx in txs] == [0, 1, 2]
        assert all(tx.tx_hash in world.beta.pending for tx in txs)
    assert all(world.message(i).state == "submitted" for i in ids)


def test_a_reverting_batch_is_halved_around_the_bad_message(world: World) -> None:
    ids = [world.attested(bytes([i])) for i in range(4)]
    world.beta.simulation_reverts[bytes.fromhex(ids[2][2:])] = "Refused()"
    report: DeliverReport = world.run("deliver", "beta")
    assert world.message(ids[2]).state == "failed"
    assert report.sent == 2  # the first part that passes goes now: [0, 1]
    assert [world.message(i).state for i in ids] == ["submitted", "submitted", "failed", "attested"]
    assert world.run("deliver", "beta").sent == 1  # the rest in the next step
