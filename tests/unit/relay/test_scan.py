"""Scan: messages are recorded once, promoted when final, orphaned when reorged out, rejected
when they cannot go anywhere; a deep reorg pauses the chain."""

from __future__ import annotations

from eth_account import Account
from sqlalchemy import select

from adapters.fake import FEE, FakeAdapter
from hub.db.models import Alert, Chain, Cursor, Message
from hub.services.relay.deliver import signed_batch
from hub.services.relay.scan import ScanReport
from tests.unit.relay.conftest import NOWHERE, World


def test_a_message_is_observed_then_finalized_at_depth(world: World) -> None:
    with world.session() as session, session.begin():
        alpha = session.scalar(select(Chain).where(Chain.name == "alpha"))
        assert alpha is not None
        alpha.finality = "2"
    message_id = world.send()
    report: ScanReport = world.run("scan", "alpha")
    assert (report.observed, report.finalized) == (1, 0)
    assert world.message(message_id).state == "observed"
    world.run("scan", "alpha")  # seen twice: recorded once
    world.alpha.mine(2)
    report = world.run("scan", "alpha")
    assert (report.observed, report.finalized) == (0, 1)
    assert world.timeline(message_id) == ["observed", "finalized"]
    assert report.cursor_block == world.alpha.head


def test_a_message_without_a_route_is_rejected_with_the_reason(world: World) -> None:
    message_id = world.send(dst=NOWHERE)
    world.run("scan", "alpha")
    message = world.message(message_id)
    assert message.state == "rejected"
    assert message.last_error == f"no route from alpha to chain id {NOWHERE}"


def test_a_message_over_the_routes_gas_cap_is_rejected(world: World) -> None:
    message_id = world.send(gas=900_000)
    world.run("scan", "alpha")
    message = world.message(message_id)
    assert message.state == "rejected" and "at most 500000" in (message.last_error or "")


def test_a_reorg_before_finality_orphans_the_message(world: World) -> None:
    with world.session() as session, session.begin():
        alpha = session.scalar(select(Chain).where(Chain.name == "alpha"))
        assert alpha is not None
        alpha.finality = "3"
    before = world.alpha.head
    message_id = world.send()
    assert world.run("scan", "alpha").observed == 1
    world.alpha.reorg(before, 5)  # the message's block is replaced, then final
    report = world.run("scan", "alpha")
    assert report.reorg is not None and not report.deep_reorg  # rewound, read again
    assert report.orphaned == 1
    message = world.message(message_id)
    assert message.state == "orphaned"
    assert "replaced by a reorg before finality" in (message.last_error or "")


def test_a_deep_reorg_pauses_the_chain_and_orphans_what_was_not_sent(world: World) -> None:
    base = world.alpha.head
    message_id = world.send()
    world.alpha.mine(2)
    world.run("scan", "alpha")
    assert world.message(message_id).state == "finalized"
    world.alpha.reorg(base, 6)  # final blocks replaced: the chain broke its promise
    report = world.run("scan", "alpha")
    assert report.deep_reorg and report.orphaned == 1
    assert world.message(message_id).state == "orphaned"
    chain = world.chain("alpha")
    assert (chain.status, chain.status_by) == ("paused", "scanner")
    with world.session() as session:
        alerts = [(a.kind, a.subject) for a in session.scalars(select(Alert))]
        cursor = session.get(Cursor, chain.id)
    assert alerts == [("deep_reorg", "chain:alpha")]
    assert cursor is not None and cursor.final_block == base + 3  # kept for the operator


def test_a_delivery_seen_on_the_destination_settles_the_message(world: World) -> None:
    message_id = world.attested()
    world.run("deliver", "beta")
    report = world.run("scan", "beta")  # the destination's gateway events, ours or anyone's
    assert report.delivered == 1
    assert world.message(message_id).state == "delivered"


def test_a_delivery_of_an_orphaned_message_is_recorded_and_the_scan_goes_on(
    world: World,
) -> None:
    """Signed before a deep reorg dropped its block, delivered by someone anyway: it stays
    orphaned (terminal) with the delivery on the row, and the destination's scan does not
    fail on that block (it did: orphaned -> finalized is not a legal move)."""
    base = world.alpha.head
    message_id = world.attested()
    with world.session() as session:
        message = session.get(Message, message_id)
        assert message is not None
        beta = session.scalar(select(Chain).where(Chain.name == "beta"))
        assert beta is not None
        batch = signed_batch(session, beta, [message])
    world.alpha.reorg(base, 6)
    assert world.run("scan", "alpha").deep_reorg
    assert world.message(message_id).state == "orphaned"
    stranger = Account.create()
    adapter = FakeAdapter([world.beta.url])
    tx = adapter.sign_delivery(world.beta.gateway, batch, stranger.key.hex(), 0, FEE, 10**6)
    adapter.send_raw(tx.raw)
    report = world.run("scan", "beta")
    assert report.delivered == 0 and report.to_block == world.beta.head
    orphaned = world.message(message_id)
    assert (orphaned.state, orphaned.dst_tx_hash) == ("orphaned", tx.tx_hash)
    assert "after its block was dropped" in (orphaned.last_error or "")
