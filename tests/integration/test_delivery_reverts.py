"""Issue 6, attack 8 (its second half): when a whole delivery transaction reverts, only the
messages that revert on their own are charged an attempt. Real anvil chains, real Postgres,
the relay's own steps in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.evm.devnet import Devnet
from hub.db.migrate import upgrade
from hub.db.models import Chain, Message, ValidatorSet
from hub.domain.attestation import attestation_digest, sign_digest
from hub.domain.states import MessageState
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from hub.services.relay.attestations import promote_signed, record_attestation
from hub.services.relay.context import RelayContext
from hub.services.relay.deliver import _record, pick_batch, signed_batch
from hub.services.relay.runner import Runner
from hub.settings import Settings
from tests.conftest import fresh_database
from tests.integration.relay.chain import Sender, contract
from tests.integration.relay.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(anvil_devnet: Devnet) -> Iterator[tuple[RelayContext, dict[str, Any]]]:
    doc = json.loads(anvil_devnet.json_path.read_text())
    with fresh_database() as url:
        upgrade(url)
        context = RelayContext.start(Settings(database_url=url, rpc_allow_private=True))
        with context.transaction() as session:
            register_devnet(session, doc, "test", NetworkPolicy(allow_private=True), 5.0)
        yield context, doc
        context.sessions.kw["bind"].dispose()


def _key(doc: dict[str, Any], role: str, index: int = 0) -> str:
    return str([a["private_key"] for a in doc["accounts"] if a["role"] == role][index])


def _attested(context: RelayContext, doc: dict[str, Any], count: int) -> list[str]:
    """`count` Inbox messages alpha -> beta, scanned, final, and signed by two validators."""
    chains = {c["name"]: c for c in doc["chains"]}
    alpha, beta = chains["alpha"], chains["beta"]
    user = Sender(alpha, _key(doc, "user"))
    inbox = contract(alpha, "Inbox", alpha["inbox"])
    sent = [
        user.send(inbox.functions.post(beta["chain_id"], beta["inbox"], b"%d" % i))
        for i in range(count)
    ]
    user.wait(sent[-1])
    Runner(context).run("scan", "beta")  # reads beta's validator set

    def final() -> list[Message]:
        Runner(context).run("scan", "alpha")
        with context.transaction() as session:
            rows = list(session.scalars(select(Message).where(Message.state == "finalized")))
            session.expunge_all()
        return rows if len(rows) >= count else []

    messages = wait_for("the messages final", final, timeout=30)
    with context.transaction() as session:
        vset = session.get(ValidatorSet, _chain(session, "beta").id)
        assert vset is not None
        epoch, members, threshold = vset.epoch, set(vset.validators), vset.threshold
    signers = [a["private_key"] for a in doc["accounts"] if a["address"] in members][:threshold]
    for message in messages:
        digest = attestation_digest(
            bytes.fromhex(message.id[2:]), epoch, beta["chain_id"], beta["gateway"]
        )
        for key in signers:
            with context.transaction() as session:
                current = session.get(Message, message.id)
                assert current is not None
                record_attestation(session, current, sign_digest(digest, key))
    return [m.id for m in messages]


def _chain(session: Session, name: str) -> Chain:
    chain = session.scalar(select(Chain).where(Chain.name == name))
    assert chain is not None
    return chain


def test_a_reverted_batch_charges_no_innocent_message(
    ctx: tuple[RelayContext, dict[str, Any]],
) -> None:
    context, doc = ctx
    ids = _attested(context, doc, 3)
    relayer = _key(doc, "relayer")
    with context.transaction() as session:
        beta = _chain(session, "beta")
        promote_signed(session, beta)
        batch = pick_batch(session, beta, 10)
        assert {m.id for m in batch} == set(ids)
        adapter = context.adapter(beta)
        address = Sender(doc["chains"][1], relayer).address
        fee = adapter.fee_quote()
        nonce = adapter.account_nonce(address, pending=True)
        # Far too little gas for three messages: the whole transaction runs out and reverts.
        tx = adapter.sign_delivery(
            beta.gateway_address, signed_batch(session, beta, batch), relayer, nonce, fee, 120_000
        )
        _record(session, beta, tx, batch)
    adapter.send_raw(tx.raw)
    wait_for("the batch mined", lambda: adapter.receipt(tx.tx_hash), timeout=30)
    assert adapter.receipt(tx.tx_hash).success is False
    assert Runner(context, relayer_key=relayer).run("confirm", "beta") is not None
    with context.transaction() as session:
        states = {m.id: (m.state, m.attempts) for m in session.scalars(select(Message))}
    assert all(states[i] == (MessageState.ATTESTED, 0) for i in ids), states
