"""The relay's decisions on a real Postgres: which messages a batch takes, backoff and
parking, two workers moving one message, operator retry, rejection without a route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import count

import pytest
from eth_account import Account
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import (
    DEFAULT_ROUTE_MAX_GAS,
    Asset,
    Attestation,
    Chain,
    Message,
    MessageEvent,
    Route,
    Transfer,
    ValidatorSet,
    utcnow,
)
from hub.domain.attestation import attestation_digest, recover_signer, sign_digest
from hub.domain.errors import ConflictError, IllegalTransitionError
from hub.domain.lifecycle import BackoffPolicy
from hub.domain.states import MessageState
from hub.services.messages import lifecycle
from hub.services.relay.attestations import promote_signed, signatures_for
from hub.services.relay.deliver import pick_batch
from hub.services.relay.retry import retry_message
from hub.services.relay.scan import routed_destinations

pytestmark = pytest.mark.integration
S = MessageState
_ids = count(1)


@pytest.fixture
def engine(clean_db: str) -> Iterator[Engine]:
    engine = create_engine(clean_db)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with sessionmaker(engine, expire_on_commit=False)() as s:
        yield s


def add_chain(session: Session, name: str, chain_id: int) -> Chain:
    chain = Chain(
        name=name,
        chain_id=chain_id,
        family="evm",
        rpc_urls=["http://127.0.0.1:1"],
        finality="2",
        gateway_address="0x" + "11" * 20,
        bridge_address="0x" + "22" * 20,
    )
    session.add(chain)
    session.flush()
    return chain


def add_message(session: Session, src: Chain, dst: Chain, state: S, **fields: object) -> Message:
    n = next(_ids)
    message = Message(
        id="0x" + n.to_bytes(32, "big").hex(),
        version=2,
        src_chain_id=src.chain_id,
        src_gateway=src.gateway_address,
        dst_chain_id=dst.chain_id,
        nonce=n,
        sender="0x" + "33" * 20,
        recipient="0x" + "44" * 20,
        gas_limit=200_000,
        payload=b"",
        state=state.value,
        src_block_number=1,
        src_block_hash="0x" + "00" * 32,
        src_tx_hash="0x" + n.to_bytes(32, "big").hex(),
        src_log_index=0,
        **fields,
    )
    session.add(message)
    session.flush()
    return message


@pytest.fixture
def pair(session: Session) -> tuple[Chain, Chain, Route]:
    alpha, beta = add_chain(session, "alpha", 1), add_chain(session, "beta", 2)
    route = Route(src=alpha, dst=beta, status="active")
    session.add(route)
    session.commit()
    return alpha, beta, route


def test_retries_never_starve_new_messages(
    session: Session, pair: tuple[Chain, Chain, Route]
) -> None:
    alpha, beta, _ = pair
    due = utcnow() - timedelta(seconds=1)
    fresh = [add_message(session, alpha, beta, S.ATTESTED) for _ in range(30)]
    retries = [
        add_message(session, alpha, beta, S.FAILED, attempts=1, next_attempt_at=due)
        for _ in range(30)
    ]
    later = add_message(
        session, alpha, beta, S.FAILED, attempts=1, next_attempt_at=utcnow() + timedelta(hours=1)
    )
    parked = add_message(session, alpha, beta, S.FAILED, attempts=5, next_attempt_at=None)
    batch = {m.id for m in pick_batch(session, beta, 20)}
    assert len(batch) == 20
    assert len(batch & {m.id for m in fresh}) == 15  # new ones come first ...
    assert len(batch & {m.id for m in retries}) == 5  # ... but retries keep a quarter
    assert later.id not in batch and parked.id not in batch
    only_retries = {m.id for m in pick_batch(session, alpha, 20)}
    assert only_retries == set()  # nothing is bound for alpha


def test_paused_route_or_asset_holds_messages(
    session: Session, pair: tuple[Chain, Chain, Route]
) -> None:
    alpha, beta, route = pair
    plain = add_message(session, alpha, beta, S.ATTESTED)
    asset = Asset(symbol="ITT", home_chain=alpha, home_token="0x" + "55" * 20, status="paused")
    session.add(asset)
    token_move = add_message(session, alpha, beta, S.ATTESTED)
    session.add(
        Transfer(
            message_id=token_move.id,
            asset=asset,
            home_chain_id=1,
            home_token=asset.home_token,
            sender="0x" + "33" * 20,
            recipient="0x" + "33" * 20,
            amount="5",
        )
    )
    session.flush()
    assert [m.id for m in pick_batch(session, beta, 10)] == [plain.id]
    route.status = "paused"
    assert pick_batch(session, beta, 10) == []


def test_backoff_then_parked(session: Session, pair: tuple[Chain, Chain, Route]) -> None:
    alpha, beta, _ = pair
    message = add_message(session, alpha, beta, S.SUBMITTED)
    policy = BackoffPolicy(max_attempts=3, base_seconds=10)
    lifecycle(session, message).fail("recipient reverted: Refused()", policy)
    assert message.state == S.FAILED and message.attempts == 1
    assert message.next_attempt_at is not None
    first_wait = (message.next_attempt_at - utcnow()).total_seconds()
    assert 9 <= first_wait <= 15.1  # 10 s, plus up to half again of jitter
    lifecycle(session, message).submit("0x" + "aa" * 32, 1)
    lifecycle(session, message).fail("again", policy)
    second_wait = (message.next_attempt_at - utcnow()).total_seconds()
    assert 19 <= second_wait <= 30.1  # doubled
    lifecycle(session, message).submit("0x" + "aa" * 32, 2)
    lifecycle(session, message).fail("and again", policy)
    assert message.attempts == 3 and message.next_attempt_at is None  # parked
    assert message.last_error == "and again"
    steps = session.scalars(select(MessageEvent.state).where(MessageEvent.message_id == message.id))
    assert list(steps).count("failed") == 3


def test_two_workers_cannot_both_move_a_message(
    engine: Engine, pair: tuple[Chain, Chain, Route]
) -> None:
    alpha, beta, _ = pair
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as setup:
        message_id = add_message(setup, alpha, beta, S.FINALIZED).id
        setup.commit()
    with factory() as one, factory() as two:
        a, b = one.get(Message, message_id), two.get(Message, message_id)
        assert a is not None and b is not None
        lifecycle(one, a).attest(2, 3)
        one.commit()
        lifecycle(two, b).attest(2, 3)  # the same move: a no-op
        two.commit()
    with factory() as three, factory() as four:
        c, d = three.get(Message, message_id), four.get(Message, message_id)
        assert c is not None and d is not None
        lifecycle(three, c).submit("0x" + "cc" * 32, 0)
        three.commit()
        with pytest.raises(IllegalTransitionError, match="meanwhile"):
            lifecycle(four, d).deliver("0x" + "dd" * 32, 9)  # acting on a stale read
    with factory() as check:
        steps = check.scalars(
            select(MessageEvent.state).where(MessageEvent.message_id == message_id)
        )
        assert list(steps) == ["attested", "submitted"]


def test_operator_retry(session: Session, pair: tuple[Chain, Chain, Route]) -> None:
    alpha, beta, _ = pair
    session.add(ValidatorSet(chain_key=beta.id, epoch=1, threshold=2, validators=["0xA", "0xB"]))
    parked = add_message(session, alpha, beta, S.FAILED, attempts=5, last_error="Refused()")
    for validator in ("0xA", "0xB"):
        session.add(Attestation(message_id=parked.id, validator=validator, epoch=1, signature="0x"))
    unsigned = add_message(session, alpha, beta, S.REJECTED)
    delivered = add_message(session, alpha, beta, S.DELIVERED)
    session.flush()
    retry_message(session, parked, "key:1")
    assert (parked.state, parked.attempts, parked.last_error) == (S.ATTESTED, 0, None)
    retry_message(session, unsigned, "key:1")
    assert unsigned.state == S.FINALIZED  # waits for fresh signatures
    with pytest.raises(ConflictError, match="only failed or rejected"):
        retry_message(session, delivered, "key:1")


def test_promotion_follows_stored_signatures(
    session: Session, pair: tuple[Chain, Chain, Route]
) -> None:
    alpha, beta, _ = pair
    session.add(
        ValidatorSet(chain_key=beta.id, epoch=2, threshold=2, validators=["0xA", "0xB", "0xC"])
    )
    ready = add_message(session, alpha, beta, S.FINALIZED)
    short = add_message(session, alpha, beta, S.FINALIZED)
    stale = add_message(session, alpha, beta, S.FINALIZED)
    for message_id, validator, epoch in [
        (ready.id, "0xA", 2),
        (ready.id, "0xC", 2),
        (short.id, "0xB", 2),
        (stale.id, "0xA", 1),
        (stale.id, "0xB", 1),
    ]:
        session.add(
            Attestation(message_id=message_id, validator=validator, epoch=epoch, signature="0x")
        )
    session.flush()
    assert promote_signed(session, beta) == 1
    assert (ready.state, short.state, stale.state) == (S.ATTESTED, S.FINALIZED, S.FINALIZED)


def test_routes_decide_rejection(session: Session, pair: tuple[Chain, Chain, Route]) -> None:
    alpha, beta, route = pair
    assert routed_destinations(session, alpha) == {beta.chain_id: DEFAULT_ROUTE_MAX_GAS}
    route.status = "paused"  # paused still counts: its messages wait, they are not rejected
    assert routed_destinations(session, alpha) == {beta.chain_id: DEFAULT_ROUTE_MAX_GAS}
    assert routed_destinations(session, beta) == {}


def test_a_signature_that_does_not_verify_is_passed_over(
    session: Session, pair: tuple[Chain, Chain, Route]
) -> None:
    """A stored row that does not recover to its signer (written around the API) is never
    sent: the delivery takes the threshold from the signatures that verify."""
    alpha, beta, _ = pair
    keys = [Account.create() for _ in range(3)]
    members = sorted((k for k in keys), key=lambda k: int(k.address, 16))
    session.add(
        ValidatorSet(
            chain_key=beta.id, epoch=1, threshold=2, validators=[k.address for k in members]
        )
    )
    message = add_message(session, alpha, beta, S.ATTESTED)
    digest = attestation_digest(
        bytes.fromhex(message.id[2:]), 1, beta.chain_id, beta.gateway_address
    )
    lowest, *honest = members
    bogus = sign_digest(digest, honest[0].key.hex())  # someone else's signature, under its name
    session.add(
        Attestation(
            message_id=message.id, validator=lowest.address, epoch=1, signature="0x" + bogus.hex()
        )
    )
    for key in honest:
        signature = "0x" + sign_digest(digest, key.key.hex()).hex()
        session.add(
            Attestation(message_id=message.id, validator=key.address, epoch=1, signature=signature)
        )
    session.flush()
    chosen = signatures_for(session, [message], beta)[message.id]
    assert [recover_signer(digest, s) for s in chosen] == [k.address for k in honest]
