"""The runner: one chain's failure never stops another, a held lease is respected, a failed
stage leaves nothing half-written, and a recorded delivery is sent only after its commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from hub.db.models import Delivery, Lease, Message, utcnow
from hub.services.relay import observe
from hub.services.relay import runner as runner_module
from hub.services.relay.runner import Next, follow_ups
from hub.services.relay.scan import ScanReport
from tests.unit.relay.conftest import RELAYER, World


def test_one_chain_failing_does_not_stop_the_others(world: World) -> None:
    errors = runner_module.STEP_ERRORS["scan"]
    world.alpha.unreachable = True
    assert world.runner.run("scan", "alpha") is None  # logged and counted, not raised
    assert runner_module.STEP_ERRORS["scan"] == errors + 1
    assert isinstance(world.runner.run("scan", "beta"), ScanReport)


def _hold(world: World, name: str, seconds: float) -> None:
    with world.session() as session, session.begin():
        lease = session.merge(Lease(name=name, owner="elsewhere:1", expires_at=utcnow()))
        lease.expires_at = utcnow() + timedelta(seconds=seconds)


def test_a_lease_held_by_another_process_is_respected(world: World) -> None:
    _hold(world, "scan:alpha", 60)
    message_id = world.send()
    assert world.runner.run("scan", "alpha") is None  # another scanner's turn
    with world.session() as session:
        assert session.get(Message, message_id) is None
    _hold(world, "scan:alpha", -1)  # its holder died: the lease ran out
    assert world.run("scan", "alpha").observed == 1


def test_a_stage_that_fails_midway_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = world.attested()

    def broken_send(raw: bytes) -> str:
        raise AssertionError("never reached: the stage fails before")

    def failing_quote() -> None:
        raise RuntimeError("a bug after the messages were picked")

    monkeypatch.setattr("adapters.fake.FakeAdapter.fee_quote", lambda self: failing_quote())
    monkeypatch.setattr("adapters.fake.FakeAdapter.send_raw", lambda self, raw: broken_send(raw))
    assert world.runner.run("deliver", "beta") is None
    assert world.message(message_id).state == "attested"
    with world.session() as session:
        assert session.scalar(select(Delivery)) is None
        assert (
            session.scalar(select(Lease.expires_at).where(Lease.name.like("deliver:%"))) <= utcnow()
        )


def test_a_delivery_is_recorded_before_it_is_sent(world: World) -> None:
    """The stage records the transaction; the runner sends it after the commit. A send that
    fails then leaves it recorded (confirm resends the bytes), never lost."""
    message_id = world.attested()
    world.beta.automine = False
    report = world.run("deliver", "beta")
    assert report.sent == 1
    with world.session() as session:
        (tx,) = session.scalars(select(Delivery))
        assert tx.status == "pending" and tx.tx_hash in world.beta.pending
    assert world.message(message_id).state == "submitted"
    world.beta.pending.clear()  # the node lost it
    world.beta.automine = True
    assert world.run("confirm", "beta").resent == 1
    assert world.run("confirm", "beta").mined == 1
    assert world.message(message_id).state == "delivered"


def test_reports_become_metrics_read_through_the_stages_ports(world: World) -> None:
    world.beta.fund(RELAYER.address, 123_456)
    observe._sampled.clear()  # sampled reads are due again
    world.run("scan", "alpha")
    world.run("deliver", "beta")
    head = REGISTRY.get_sample_value("islands_chain_head_block", {"chain": "alpha"})
    assert head == world.alpha.head
    labels = {"chain": "beta", "relayer": RELAYER.address}
    assert REGISTRY.get_sample_value("islands_relayer_balance_wei", labels) == 123_456


def test_a_step_that_did_work_is_followed_at_once() -> None:
    @dataclass
    class Report:
        busy: bool
        finalized: int = 0

    assert follow_ups("scan", "alpha", Report(False)) == []
    assert follow_ups("scan", "alpha", None) == []  # failed or did not run
    assert follow_ups("scan", "alpha", Report(True)) == [Next("scan", "alpha")]
    assert follow_ups("scan", "alpha", Report(True, 3)) == [Next("scan", "alpha"), Next("attest")]
    assert follow_ups("attest", "q", Report(True)) == [Next("attest", "q"), Next("deliver")]
    assert follow_ups("deliver", "beta", Report(True)) == [
        Next("deliver", "beta"),
        Next("confirm", "beta"),
    ]
    assert follow_ups("guardian", "beta", Report(True)) == []  # bounded by the tick
