"""The adapter conformance suite: what every chain adapter must do against a real node.

A family subclasses `AdapterConformance` and provides two fixtures:
- `adapter`: a ChainAdapter built from the chain's RPC URLs,
- `chain`: a `ConformanceChain` describing the deployed contracts and how to act on the
  chain (send a `Gateway.send`, mine blocks, ask the node directly).
The suite only talks to the chain through the adapter under test and those callables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from adapters.base import (
    AdapterError,
    ChainAdapter,
    EndpointUnavailableError,
    FinalityPolicy,
    Message,
)

HASH_RE = re.compile(r"^0x[0-9a-f]{64}$")


@dataclass(frozen=True)
class SentMessage:
    """What the chain fixture reports about a `Gateway.send` it made."""

    tx_hash: str
    block_number: int
    sender: str
    dst_chain_id: int
    recipient: str
    payload: bytes


@dataclass(frozen=True)
class ConformanceChain:
    """A chain with the Islands contracts deployed, as the suite sees it."""

    chain_id: int
    rpc_urls: Sequence[str]
    gateway: str
    bridge: str
    token: str
    funded_key: str
    validators: tuple[str, ...]
    threshold: int
    # a destination chain id for test messages (no relayer should ever deliver them)
    remote_chain_id: int
    send_message: Callable[[int, str, bytes], SentMessage]
    mine: Callable[[int], None]
    node_block_hash: Callable[[int], str | None]
    gateway_message_id: Callable[[Message], bytes]
    mint_tokens: Callable[[str, int], None]
    fresh_address: Callable[[], str]
    same_address: Callable[[str, str], bool] = field(default=lambda a, b: a.lower() == b.lower())
    dead_urls: Sequence[str] = ("http://127.0.0.1:1", "http://127.0.0.1:9")


class AdapterConformance:
    """Subclass with fixtures `adapter` and `chain`; every test here must pass unchanged."""

    # -- identity and health ----------------------------------------------------------

    def test_chain_id(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        assert adapter.chain_id() == chain.chain_id

    def test_is_a_chain_adapter(self, adapter: ChainAdapter) -> None:
        assert isinstance(adapter, ChainAdapter)
        assert adapter.family
        assert list(adapter.rpc_urls)

    def test_normalize_address(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        canonical = adapter.normalize_address(chain.gateway)
        assert chain.same_address(canonical, chain.gateway)
        assert adapter.normalize_address(canonical) == canonical
        for bad in ("", "nope", "0x1234"):
            with pytest.raises(ValueError):
                adapter.normalize_address(bad)

    def test_probe_endpoints(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        reports = adapter.probe_endpoints()
        assert [r.url for r in reports] == list(chain.rpc_urls)
        assert all(r.chain_id == chain.chain_id and r.error == "" for r in reports)

    def test_head_advances(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        before = adapter.head()
        chain.mine(2)
        after = adapter.head()
        assert after.number > before.number
        assert HASH_RE.match(after.hash)

    # -- finality and blocks ---------------------------------------------------------------

    def test_finalized_block_obeys_depth(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        chain.mine(5)
        low = adapter.head().number
        final = adapter.finalized_block(FinalityPolicy.parse(3))
        high = adapter.head().number
        assert low - 3 <= final.number <= high - 3
        assert final.hash == chain.node_block_hash(final.number)

    def test_finalized_block_depth_zero_is_head(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        low = adapter.head().number
        final = adapter.finalized_block(FinalityPolicy.parse(0))
        assert low <= final.number <= adapter.head().number

    def test_finalized_block_floors_at_genesis(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        final = adapter.finalized_block(FinalityPolicy.parse(10_000))
        assert final.number == 0
        assert final.hash == chain.node_block_hash(0)

    def test_block_hash_matches_node(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        chain.mine(1)
        number = adapter.head().number
        block_hash = adapter.block_hash(number)
        assert block_hash is not None and HASH_RE.match(block_hash)
        assert block_hash == chain.node_block_hash(number)

    def test_block_hash_of_future_block_is_none(self, adapter: ChainAdapter) -> None:
        assert adapter.block_hash(adapter.head().number + 1_000_000) is None

    def test_receipt_of_unknown_tx_is_none(self, adapter: ChainAdapter) -> None:
        assert adapter.receipt("0x" + "ab" * 32) is None

    # -- contracts ---------------------------------------------------------------------

    def test_code_at(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        assert len(adapter.code_at(chain.gateway)) > 0
        assert len(adapter.code_at(chain.bridge)) > 0
        assert adapter.code_at(chain.fresh_address()) == b""

    def test_contract_chain_id(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        assert adapter.contract_chain_id(chain.gateway) == chain.chain_id
        assert adapter.contract_chain_id(chain.bridge) == chain.chain_id

    def test_contract_chain_id_without_code(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        with pytest.raises(AdapterError, match="no contract code"):
            adapter.contract_chain_id(chain.fresh_address())

    def test_contract_chain_id_of_a_contract_without_it(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        with pytest.raises(AdapterError):
            adapter.contract_chain_id(chain.token)

    def test_gateway_config(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        config = adapter.gateway_config(chain.gateway)
        assert chain.same_address(config.address, chain.gateway)
        assert config.chain_id == chain.chain_id
        assert config.epoch >= 1
        assert config.threshold == chain.threshold
        assert sorted(v.lower() for v in config.validators) == sorted(
            v.lower() for v in chain.validators
        )
        assert config.validators == tuple(config.validators)
        assert config.paused is False
        assert config.outbound_nonce >= 0

    # -- outbound messages --------------------------------------------------------------

    def test_send_is_observed_once(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        nonce = adapter.gateway_config(chain.gateway).outbound_nonce
        recipient, payload = chain.fresh_address(), b"\x00conformance\xff" * 3
        sent = chain.send_message(chain.remote_chain_id, recipient, payload)
        found = adapter.messages(chain.gateway, sent.block_number, sent.block_number)
        ours = [m for m in found if m.tx_hash == sent.tx_hash]
        assert len(ours) == 1
        observed = ours[0]
        message = observed.message
        assert message.src_chain_id == chain.chain_id
        assert message.dst_chain_id == chain.remote_chain_id
        assert message.nonce == nonce
        assert chain.same_address(message.sender, sent.sender)
        assert chain.same_address(message.recipient, recipient)
        assert message.payload == payload
        assert message.version == 1
        assert observed.block_number == sent.block_number
        assert observed.block_hash == chain.node_block_hash(sent.block_number)
        assert HASH_RE.match(observed.tx_hash) and observed.log_index >= 0
        assert observed.id == chain.gateway_message_id(message)
        assert adapter.gateway_config(chain.gateway).outbound_nonce == nonce + 1

    def test_send_receipt(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        sent = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"r")
        receipt = adapter.receipt(sent.tx_hash)
        assert receipt is not None and receipt.success
        assert receipt.tx_hash == sent.tx_hash
        assert receipt.block_number == sent.block_number
        assert receipt.block_hash == chain.node_block_hash(sent.block_number)
        assert receipt.logs_count >= 1

    def test_messages_in_a_range_are_ordered(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        first = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"1")
        second = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"2")
        found = adapter.messages(chain.gateway, first.block_number, second.block_number)
        ours = [m for m in found if m.tx_hash in (first.tx_hash, second.tx_hash)]
        assert [m.message.payload for m in ours] == [b"1", b"2"]
        assert ours[1].message.nonce == ours[0].message.nonce + 1
        keys = [(m.block_number, m.log_index) for m in found]
        assert keys == sorted(keys)

    def test_messages_of_an_empty_range(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        assert adapter.messages(chain.gateway, 0, 0) == []

    def test_unknown_message_is_not_delivered(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        assert adapter.is_delivered(chain.gateway, b"\x01" * 32) is False
        outcomes = adapter.delivery_outcomes(chain.gateway, 0, adapter.head().number)
        assert all(o.message_id != b"\x01" * 32 for o in outcomes)

    # -- tokens -------------------------------------------------------------------------

    def test_token_reads(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        holder = chain.fresh_address()
        supply = adapter.token_supply(chain.token)
        assert adapter.token_balance(chain.token, holder) == 0
        chain.mint_tokens(holder, 12345)
        assert adapter.token_balance(chain.token, holder) == 12345
        assert adapter.token_supply(chain.token) == supply + 12345

    # -- endpoints ----------------------------------------------------------------------

    def test_failover_to_a_good_endpoint(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        urls = [chain.dead_urls[0], *chain.rpc_urls]
        other = type(adapter)(urls, timeout=2.0)
        assert other.chain_id() == chain.chain_id
        assert other.head().number >= 0
        assert other.contract_chain_id(chain.gateway) == chain.chain_id
        reports = other.probe_endpoints()
        assert reports[0].url == chain.dead_urls[0]
        assert reports[0].chain_id is None and reports[0].error
        assert reports[1].chain_id == chain.chain_id

    def test_all_endpoints_dead(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        dead = list(chain.dead_urls)
        other = type(adapter)(dead, timeout=2.0)
        with pytest.raises(EndpointUnavailableError) as raised:
            other.head()
        text = str(raised.value)
        assert all(url in text for url in dead)
        assert "Traceback" not in text
        reports = other.probe_endpoints()
        assert [r.url for r in reports] == dead
        assert all(r.chain_id is None and r.error for r in reports)
