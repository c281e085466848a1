"""The conformance suite's offline parts against the in-memory adapter (`fake` family): it
is held to what real adapters are, so stage tests built on it test the hub, not the fake."""

from __future__ import annotations

import itertools

import pytest
from eth_account import Account

from adapters.base import ChainAdapter
from adapters.fake import FakeAdapter, FakeChain
from adapters.registry import create_adapter
from tests.conformance.suite import (
    AdapterConformance,
    ConformanceChain,
    DeliveryRoute,
    SentMessage,
)

FUNDED = Account.create()
RELAYER = Account.create()
VALIDATORS = tuple(Account.create().address for _ in range(3))
_fresh = itertools.count(1)


def _conformance_chain(chain: FakeChain) -> ConformanceChain:
    def send(dst: int, recipient: str, payload: bytes, gas: int = 200_000) -> SentMessage:
        sent = chain.send_message(FUNDED.address, dst, recipient, payload, gas)
        m = sent.message
        return SentMessage(sent.tx_hash, sent.block_number, m.sender, dst, recipient, payload)

    def node_block_hash(number: int) -> str | None:
        block = chain.block(number)
        return None if block is None else block.hash

    return ConformanceChain(
        chain_id=chain.chain_id,
        rpc_urls=[chain.url],
        gateway=chain.gateway,
        bridge=chain.bridge,
        token=chain.token,
        funded_key=FUNDED.key.hex(),
        validators=chain.validators,
        threshold=chain.threshold,
        remote_chain_id=4_242_424,
        send_message=send,
        send_message_with_gas=send,
        mine=chain.mine,
        node_block_hash=node_block_hash,
        gateway_message_id=lambda message: message.id,
        mint_tokens=chain.mint,
        fresh_address=lambda: "0x" + (0xF00D0000 + next(_fresh)).to_bytes(20, "big").hex(),
        checkpoint=lambda: chain.head,
        reorg_to=lambda at, blocks: chain.reorg(int(at), blocks),  # type: ignore[call-overload]
        limited_urls=[chain.url],
        log_range_limit=8,
    )


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain.open("conformance", 777, validators=VALIDATORS, threshold=2)
    chain.mine(3)
    chain.fund(RELAYER.address, 10**18)
    return chain


class TestFakeAdapter(AdapterConformance):
    offline_only = True

    @pytest.fixture
    def adapter(self, fake_chain: FakeChain) -> ChainAdapter:
        return create_adapter("fake", [fake_chain.url])

    @pytest.fixture
    def chain(self, fake_chain: FakeChain) -> ConformanceChain:
        return _conformance_chain(fake_chain)

    @pytest.fixture
    def route(self, chain: ConformanceChain) -> DeliveryRoute:
        other = _conformance_chain(FakeChain.open("conformance-b", 778, threshold=2))

        def cannot(*_: object) -> SentMessage:
            raise NotImplementedError("the fake family does not bridge tokens")

        return DeliveryRoute(
            source=chain,
            destination=other,
            relayer_key=RELAYER.key.hex(),
            relayer_address=RELAYER.address,
            transfer=cannot,
            wrapped_token=other.token,
            attest=lambda *_: [],
        )


def test_the_fake_family_is_registered() -> None:
    assert isinstance(create_adapter("fake", ["fake://nowhere"]), FakeAdapter)
