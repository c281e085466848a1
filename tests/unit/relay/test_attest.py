"""Attest: each validator checks a final message against its own view of the source and signs
it; at the threshold it is attested. What the source contradicts is refused, with a backoff."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from hub.db.models import Attestation, AttestationRefusal, Message
from hub.services.relay.validator import AttestReport
from tests.unit.relay.conftest import World


def _final(world: World) -> str:
    message_id = world.send()
    world.run("scan", "beta")  # the destination's validator set
    world.run("scan", "alpha")
    assert world.message(message_id).state == "finalized"
    return message_id


def test_two_of_three_signatures_attest_a_message(world: World) -> None:
    message_id = _final(world)
    first: AttestReport = world.run("attest", world.validators[0])
    assert (first.signed, first.refused) == (1, 0)
    assert world.message(message_id).state == "finalized"  # one of the two it needs
    again: AttestReport = world.run("attest", world.validators[0])
    assert again.signed == 0  # signed already: not its work any more
    world.run("attest", world.validators[1])
    assert world.message(message_id).state == "attested"
    assert world.timeline(message_id)[-1] == "attested"
    with world.session() as session:
        signers = set(session.scalars(select(Attestation.validator)))
    assert signers == {world.validators[0].address, world.validators[1].address}


def test_a_message_the_source_does_not_show_is_refused_and_set_aside(world: World) -> None:
    message_id = _final(world)
    with world.session() as session, session.begin():
        message = session.get(Message, message_id)
        assert message is not None
        message.src_tx_hash = "0x" + "66" * 32  # the hub's record says another transaction
    report: AttestReport = world.run("attest", world.validators[0])
    assert (report.signed, report.refused) == (0, 1)
    with world.session() as session:
        refusal = session.scalar(select(AttestationRefusal))
        assert refusal is not None
        assert refusal.reason.startswith("source transaction missing or reverted")
        assert refusal.retry_at > datetime.now(UTC)
    assert world.run("attest", world.validators[0]).refused == 0  # backing off: not retried yet


def test_a_chain_that_does_not_answer_is_a_refusal_not_a_crash(world: World) -> None:
    message_id = _final(world)
    world.alpha.unreachable = True
    report: AttestReport = world.run("attest", world.validators[0])
    assert report.refused == 1
    with world.session() as session:
        refusal = session.scalar(select(AttestationRefusal))
        assert refusal is not None and refusal.reason.startswith("could not check")
    assert world.message(message_id).state == "finalized"
