"""A relay on in-memory chains and SQLite: two fake chains (alpha, beta) registered in the hub
with routes both ways, three validators (two of three sign), a funded relayer, and the runner
the Celery tasks and the embedded loop use. No node, no Postgres: a test takes about a second."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import ChainAdapter
from adapters.fake import FakeAdapter, FakeChain
from hub.db.engine import make_engine, make_sessionmaker
from hub.db.models import Base, Chain, Cursor, Message, Route
from hub.domain.attestation import attestation_digest, sign_digest
from hub.services.relay.attestations import record_attestation
from hub.services.relay.context import RelayContext
from hub.services.relay.runner import Runner
from hub.services.relay.validator import Validator
from hub.services.relay.validator_config import parse
from hub.settings import Settings

VALIDATORS: list[LocalAccount] = sorted(
    (Account.create() for _ in range(3)), key=lambda a: int(a.address, 16)
)
RELAYER, GUARDIAN, USER = Account.create(), Account.create(), Account.create()
NOWHERE = 9_999  # a chain id the hub has no route to


class FakeChains:
    """Adapters on the fake chains, for the registry's URLs and a validator's own alike."""

    def adapter(self, chain: Chain) -> ChainAdapter:
        return FakeAdapter(chain.rpc_urls)

    def own_adapter(self, family: str, rpc_urls: tuple[str, ...], quorum: int) -> ChainAdapter:
        return FakeAdapter(rpc_urls)


@dataclass
class World:
    ctx: RelayContext
    alpha: FakeChain
    beta: FakeChain
    runner: Runner
    validators: list[Validator] = field(default_factory=list)

    def session(self) -> Session:
        return self.ctx.sessions()

    def run(self, stage: str, target: Any) -> Any:
        """One step of a stage through the runner; its report (None would mean it failed)."""
        report = self.runner.run(stage, target)
        assert report is not None, f"{stage} on {target} failed or did not run"
        return report

    def send(self, payload: bytes = b"hello", dst: int | None = None, gas: int = 200_000) -> str:
        """A message from alpha to beta (or `dst`), mined on alpha; its id."""
        recipient = "0x" + "ab" * 20
        dst_id = self.beta.chain_id if dst is None else dst
        sent = self.alpha.send_message(USER.address, dst_id, recipient, payload, gas)
        return "0x" + sent.id.hex()

    def message(self, message_id: str) -> Message:
        with self.session() as session:
            found = session.get(Message, message_id)
            assert found is not None
            session.expunge_all()
            return found

    def timeline(self, message_id: str) -> list[str]:
        with self.session() as session:
            found = session.get(Message, message_id)
            assert found is not None
            return [e.state for e in found.events]

    def chain(self, name: str) -> Chain:
        with self.session() as session:
            found = session.scalar(select(Chain).where(Chain.name == name))
            assert found is not None
            session.expunge_all()
            return found

    def sign(self, message_id: str, signers: int = 2) -> None:
        """`signers` validators sign the message for beta's gateway, as the API takes it."""
        digest = attestation_digest(
            bytes.fromhex(message_id[2:]), self.beta.epoch, self.beta.chain_id, self.beta.gateway
        )
        for account in VALIDATORS[:signers]:
            with self.session() as session, session.begin():
                message = session.get(Message, message_id)
                assert message is not None
                record_attestation(session, message, sign_digest(digest, account.key.hex()))

    def attested(self, payload: bytes = b"hello") -> str:
        """A message alpha -> beta, scanned final and signed by two of three."""
        message_id = self.send(payload)
        self.run("scan", "beta")  # reads beta's validator set
        self.run("scan", "alpha")
        self.sign(message_id)
        return message_id


def _register(session: Session, chain: FakeChain, finality: str) -> Chain:
    row = Chain(
        name=chain.name,
        chain_id=chain.chain_id,
        family="fake",
        rpc_urls=[chain.url],
        finality=finality,
        gateway_address=chain.gateway,
        bridge_address=chain.bridge,
        status="active",
    )
    session.add(row)
    session.flush()
    head = chain.blocks[-1]
    session.add(
        Cursor(
            chain_key=row.id,
            start_block=head.number,
            block_number=head.number,
            block_hash=head.hash,
            final_block=head.number,
            final_hash=head.hash,
        )
    )
    return row


def make_world(tmp_path: Path, **settings: Any) -> World:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    Base.metadata.create_all(engine)
    config = Settings(database_url=str(engine.url), **settings)
    ctx = RelayContext(config, make_sessionmaker(engine))
    members = [v.address for v in VALIDATORS]
    alpha = FakeChain.open("alpha", 1001, validators=members, threshold=2)
    beta = FakeChain.open("beta", 1002, validators=members, threshold=2)
    for chain in (alpha, beta):
        chain.mine(5)
        chain.fund(RELAYER.address, 10**20)
    with ctx.transaction() as session:
        a, b = _register(session, alpha, "0"), _register(session, beta, "0")
        session.add_all(
            [Route(src=a, dst=b, status="active"), Route(src=b, dst=a, status="active")]
        )
    runner = Runner(ctx, RELAYER.key.hex(), GUARDIAN.key.hex(), chains=FakeChains())
    own = parse(
        {
            "chains": [
                {
                    "name": c.name,
                    "chain_id": c.chain_id,
                    "family": "fake",
                    "rpc_urls": [c.url],
                    "gateway": c.gateway,
                    "finality": 0,
                }
                for c in (alpha, beta)
            ]
        }
    )
    validators = [Validator(v.key.hex(), own) for v in VALIDATORS]
    return World(ctx, alpha, beta, runner, validators)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.ctx.sessions.kw["bind"].dispose()
