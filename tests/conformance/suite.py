"""The adapter conformance suite: what every chain adapter must do against a real node.

A family subclasses `AdapterConformance` and provides three fixtures:
- `adapter`: a ChainAdapter built from the chain's RPC URLs,
- `chain`: a `ConformanceChain` describing the deployed contracts and how to act on the
  chain (send a `Gateway.send`, mine blocks, ask the node directly),
- `route`: a `DeliveryRoute` from `chain` to a second chain of the family, wired to it by
  the token bridges, with a relayer account and a way to attest messages.
The suite only talks to the chains through the adapter under test and those callables.
A node that cannot do what a test needs is not skipped: its fixture provides the nearest
equivalent and says which (e.g. a reorg by snapshot and revert, a provider's range limit in
front of a node that has none).

Tests marked `offline` need no node behind the adapter: an in-memory adapter (the `fake`
family) passes them, and a subclass with `offline_only = True` runs only those. The others
need a node: real endpoints (timeouts) or the contracts' own behaviour (signature recovery,
token bridging).
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from adapters.base import (
    MESSAGE_VERSION,
    AdapterError,
    ChainAdapter,
    DeliveryStatus,
    EndpointUnavailableError,
    FinalityPolicy,
    Message,
    NonceTooLowError,
    ObservedMessage,
    Receipt,
    SignedMessage,
    SignedTx,
    SimulationError,
)

HASH_RE = re.compile(r"^0x[0-9a-f]{64}$")
offline = pytest.mark.offline


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
    # the same, naming the gas the destination forwards to the recipient
    send_message_with_gas: Callable[[int, str, bytes, int], SentMessage]
    mine: Callable[[int], None]
    node_block_hash: Callable[[int], str | None]
    gateway_message_id: Callable[[Message], bytes]
    mint_tokens: Callable[[str, int], None]
    fresh_address: Callable[[], str]
    # a point in the chain's history, and a reorg back to it: every block after the
    # checkpoint is replaced by `blocks` new ones (whatever the node offers to do it)
    checkpoint: Callable[[], object]
    reorg_to: Callable[[object, int], None]
    # endpoints of this chain that refuse log queries over `log_range_limit` blocks: the
    # node's own limit, or a provider's in front of it
    limited_urls: Sequence[str]
    log_range_limit: int
    same_address: Callable[[str, str], bool] = field(default=lambda a, b: a.lower() == b.lower())
    # the gas limit of a message sent without naming one
    default_gas_limit: int = 200_000
    dead_urls: Sequence[str] = ("http://127.0.0.1:1", "http://127.0.0.1:9")
    # seconds a client of this node waits for an answer (Ganache takes seconds to estimate gas)
    timeout: float = 5.0
    # how this family writes the endpoint of a TCP port on 127.0.0.1
    endpoint_url: Callable[[int], str] = field(default=lambda port: f"http://127.0.0.1:{port}")


@dataclass(frozen=True)
class DeliveryRoute:
    """Two chains of one family wired together, as the suite's delivery tests see them.

    `source` is the chain of the `chain` fixture. The relayer account is used by nothing but
    these tests, so its nonces are the suite's own.
    """

    source: ConformanceChain
    destination: ConformanceChain
    relayer_key: str
    relayer_address: str
    # bridges `amount` of the source's token to `to` on the destination: a real transfer
    # whose message goes from the source bridge to the destination bridge
    transfer: Callable[[str, int], SentMessage]
    # the destination's wrapped copy of the source's token
    wrapped_token: str
    # signatures of `count` validators of the destination's set over (message id, epoch),
    # in the order the destination gateway takes them
    attest: Callable[[bytes, int, int], list[bytes]]
    receipt_timeout: float = 30.0


def _destination_adapter(adapter: ChainAdapter, route: DeliveryRoute) -> ChainAdapter:
    """An adapter of the same family on the route's destination."""
    return type(adapter)(route.destination.rpc_urls, timeout=route.destination.timeout)


def _observed(adapter: ChainAdapter, chain: ConformanceChain, sent: SentMessage) -> ObservedMessage:
    found = adapter.messages(chain.gateway, sent.block_number, sent.block_number)
    ours = [m for m in found if m.tx_hash == sent.tx_hash]
    assert len(ours) == 1, f"{sent.tx_hash} sent {len(ours)} messages"
    return ours[0]


def _attested(
    dst: ChainAdapter, route: DeliveryRoute, message: Message, count: int | None = None
) -> SignedMessage:
    config = dst.gateway_config(route.destination.gateway)
    count = config.threshold if count is None else count
    return SignedMessage(message, tuple(route.attest(message.id, config.epoch, count)))


def _wait_receipt(adapter: ChainAdapter, tx_hash: str, timeout: float) -> Receipt:
    deadline = time.monotonic() + timeout
    while (receipt := adapter.receipt(tx_hash)) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"no receipt for {tx_hash} within {timeout:g}s")
        time.sleep(0.1)
    return receipt


def _signed_delivery(
    dst: ChainAdapter, route: DeliveryRoute, batch: Sequence[SignedMessage]
) -> SignedTx:
    gas = dst.simulate_delivery(route.destination.gateway, batch, route.relayer_address)
    nonce = dst.account_nonce(route.relayer_address, pending=True)
    fee = dst.fee_quote()
    return dst.sign_delivery(route.destination.gateway, batch, route.relayer_key, nonce, fee, gas)


def _foreign_message(route: DeliveryRoute, chain: ConformanceChain) -> Message:
    """A well-formed message for the destination that no source ever sent."""
    return Message(
        src_chain_id=route.source.chain_id,
        src_gateway=route.source.gateway,
        dst_chain_id=route.destination.chain_id,
        nonce=2**62 + secrets.randbelow(2**32),
        sender=chain.fresh_address(),
        recipient=chain.fresh_address(),
        gas_limit=chain.default_gas_limit,
        payload=b"never sent",
    )


class AdapterConformance:
    """Subclass with fixtures `adapter`, `chain` and `route`; every test here must pass
    unchanged."""

    # an adapter with no node behind it runs only the tests marked offline
    offline_only = False

    @pytest.fixture(autouse=True)
    def _node_needed(self, request: pytest.FixtureRequest) -> None:
        if self.offline_only and request.node.get_closest_marker("offline") is None:
            pytest.skip("needs a node behind the adapter")

    # -- identity and health ----------------------------------------------------------

    @offline
    def test_chain_id(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        assert adapter.chain_id() == chain.chain_id

    @offline
    def test_is_a_chain_adapter(self, adapter: ChainAdapter) -> None:
        assert isinstance(adapter, ChainAdapter)
        assert adapter.family
        assert list(adapter.rpc_urls)

    @offline
    def test_normalize_address(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        canonical = adapter.normalize_address(chain.gateway)
        assert chain.same_address(canonical, chain.gateway)
        assert adapter.normalize_address(canonical) == canonical
        for bad in ("", "nope", "0x1234"):
            with pytest.raises(ValueError):
                adapter.normalize_address(bad)

    @offline
    def test_probe_endpoints(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        reports = adapter.probe_endpoints()
        assert [r.url for r in reports] == list(chain.rpc_urls)
        assert all(r.chain_id == chain.chain_id and r.error == "" for r in reports)

    @offline
    def test_head_advances(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        before = adapter.head()
        chain.mine(2)
        after = adapter.head()
        assert after.number > before.number
        assert HASH_RE.match(after.hash)

    # -- finality and blocks ---------------------------------------------------------------

    @offline
    def test_finalized_block_obeys_depth(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        chain.mine(5)
        low = adapter.head().number
        final = adapter.finalized_block(FinalityPolicy.parse(3))
        high = adapter.head().number
        assert low - 3 <= final.number <= high - 3
        assert final.hash == chain.node_block_hash(final.number)

    @offline
    def test_finalized_block_depth_zero_is_head(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        low = adapter.head().number
        final = adapter.finalized_block(FinalityPolicy.parse(0))
        assert low <= final.number <= adapter.head().number

    @offline
    def test_finalized_block_floors_at_genesis(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        final = adapter.finalized_block(FinalityPolicy.parse(10_000))
        assert final.number == 0
        assert final.hash == chain.node_block_hash(0)

    @offline
    def test_block_hash_matches_node(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        chain.mine(1)
        number = adapter.head().number
        block_hash = adapter.block_hash(number)
        assert block_hash is not None and HASH_RE.match(block_hash)
        assert block_hash == chain.node_block_hash(number)

    @offline
    def test_block_hash_of_future_block_is_none(self, adapter: ChainAdapter) -> None:
        assert adapter.block_hash(adapter.head().number + 1_000_000) is None

    @offline
    def test_receipt_of_unknown_tx_is_none(self, adapter: ChainAdapter) -> None:
        assert adapter.receipt("0x" + "ab" * 32) is None

    # -- contracts ---------------------------------------------------------------------

    @offline
    def test_code_at(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        assert len(adapter.code_at(chain.gateway)) > 0
        assert len(adapter.code_at(chain.bridge)) > 0
        assert adapter.code_at(chain.fresh_address()) == b""

    @offline
    def test_contract_chain_id(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        assert adapter.contract_chain_id(chain.gateway) == chain.chain_id
        assert adapter.contract_chain_id(chain.bridge) == chain.chain_id

    @offline
    def test_contract_chain_id_without_code(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        with pytest.raises(AdapterError, match="no contract code"):
            adapter.contract_chain_id(chain.fresh_address())

    @offline
    def test_contract_chain_id_of_a_contract_without_it(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        with pytest.raises(AdapterError):
            adapter.contract_chain_id(chain.token)

    @offline
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

    @offline
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
        assert message.version == MESSAGE_VERSION
        assert chain.same_address(message.src_gateway, chain.gateway)
        assert message.gas_limit == chain.default_gas_limit
        assert observed.block_number == sent.block_number
        assert observed.block_hash == chain.node_block_hash(sent.block_number)
        assert HASH_RE.match(observed.tx_hash) and observed.log_index >= 0
        assert observed.id == chain.gateway_message_id(message)
        assert adapter.gateway_config(chain.gateway).outbound_nonce == nonce + 1

    @offline
    def test_send_with_a_gas_limit(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        recipient = chain.fresh_address()
        sent = chain.send_message_with_gas(chain.remote_chain_id, recipient, b"gas", 345_678)
        observed = _observed(adapter, chain, sent)
        assert observed.message.gas_limit == 345_678
        assert observed.id == chain.gateway_message_id(observed.message)

    @offline
    def test_send_receipt(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        sent = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"r")
        receipt = adapter.receipt(sent.tx_hash)
        assert receipt is not None and receipt.success
        assert receipt.tx_hash == sent.tx_hash
        assert receipt.block_number == sent.block_number
        assert receipt.block_hash == chain.node_block_hash(sent.block_number)
        assert receipt.logs_count >= 1

    @offline
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

    @offline
    def test_messages_of_an_empty_range(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        assert adapter.messages(chain.gateway, 0, 0) == []

    @offline
    def test_messages_of_a_range_without_events(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        sent = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"before")
        chain.mine(2)
        head = adapter.head().number
        assert head >= sent.block_number + 2
        assert adapter.messages(chain.gateway, sent.block_number + 1, head) == []
        assert adapter.delivery_outcomes(chain.gateway, sent.block_number + 1, head) == []

    @offline
    def test_messages_over_the_nodes_range_limit(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        """Endpoints that refuse a log range over their limit are read in parts: every
        message of a longer range is found once, in order."""
        limited = type(adapter)(list(chain.limited_urls), timeout=chain.timeout)
        first = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"far 1")
        chain.mine(chain.log_range_limit + 1)
        second = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"far 2")
        assert second.block_number - first.block_number + 1 > chain.log_range_limit
        found = limited.messages(chain.gateway, first.block_number, second.block_number)
        assert [m.message.payload for m in found] == [b"far 1", b"far 2"]
        assert found == adapter.messages(chain.gateway, first.block_number, second.block_number)
        outcomes = limited.delivery_outcomes(chain.gateway, 0, adapter.head().number)
        assert outcomes == adapter.delivery_outcomes(chain.gateway, 0, adapter.head().number)

    @offline
    def test_a_reorg_replaces_a_message(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        """After a reorg no message is reported from the block it replaced: the message is
        gone, or (where the node takes the transaction back) in a block of the new history."""
        checkpoint = chain.checkpoint()
        sent = chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"reorged")
        (observed,) = [
            m
            for m in adapter.messages(chain.gateway, sent.block_number, sent.block_number)
            if m.tx_hash == sent.tx_hash
        ]
        chain.reorg_to(checkpoint, 3)
        head = adapter.head().number
        assert head >= sent.block_number
        assert adapter.block_hash(sent.block_number) != observed.block_hash
        found = adapter.messages(chain.gateway, sent.block_number, head)
        assert all(m.block_hash != observed.block_hash for m in found)
        for m in found:  # taken back by the node: it belongs to the new history
            assert m.block_hash == adapter.block_hash(m.block_number)
        receipt = adapter.receipt(sent.tx_hash)
        assert receipt is None or receipt.block_hash == adapter.block_hash(receipt.block_number)

    @offline
    def test_unknown_message_is_not_delivered(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        assert adapter.is_delivered(chain.gateway, b"\x01" * 32) is False
        outcomes = adapter.delivery_outcomes(chain.gateway, 0, adapter.head().number)
        assert all(o.message_id != b"\x01" * 32 for o in outcomes)

    # -- tokens -------------------------------------------------------------------------

    @offline
    def test_token_reads(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        holder = chain.fresh_address()
        supply = adapter.token_supply(chain.token)
        assert adapter.token_balance(chain.token, holder) == 0
        chain.mint_tokens(holder, 12345)
        assert adapter.token_balance(chain.token, holder) == 12345
        assert adapter.token_supply(chain.token) == supply + 12345

    # -- endpoints ----------------------------------------------------------------------

    @offline
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

    @offline
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

    def test_a_silent_endpoint_times_out(
        self, adapter: ChainAdapter, chain: ConformanceChain
    ) -> None:
        """An endpoint that takes the connection and never answers costs one timeout: the
        call fails over to the next URL, or fails naming the endpoint when none is left."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)  # connections complete in the kernel; nothing ever answers
            url = chain.endpoint_url(silent.getsockname()[1])
            started = time.monotonic()
            other = type(adapter)([url, *chain.rpc_urls], timeout=1.0)
            assert other.chain_id() == chain.chain_id
            assert time.monotonic() - started < 10
            alone = type(adapter)([url], timeout=1.0)
            started = time.monotonic()
            with pytest.raises(EndpointUnavailableError) as raised:
                alone.head()
            assert 0.9 < time.monotonic() - started < 10
            assert url in str(raised.value) and "timed out" in str(raised.value)

    # -- reads at a block ---------------------------------------------------------------

    @offline
    def test_token_reads_at_a_block(self, adapter: ChainAdapter, chain: ConformanceChain) -> None:
        holder = chain.fresh_address()
        before = adapter.head().number
        supply = adapter.token_supply(chain.token, block=before)
        chain.mint_tokens(holder, 777)
        assert adapter.token_supply(chain.token) == supply + 777
        assert adapter.token_supply(chain.token, block=before) == supply
        assert adapter.token_balance(chain.token, holder) == 777
        assert adapter.token_balance(chain.token, holder, block=before) == 0

    # -- accounts and fees --------------------------------------------------------------

    @offline
    def test_accounts_and_fees(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        fresh = chain.fresh_address()
        assert adapter.native_balance(fresh) == 0
        assert adapter.account_nonce(fresh) == 0
        assert adapter.account_nonce(fresh, pending=True) == 0
        assert adapter.native_balance(route.relayer_address) > 0
        fee = adapter.fee_quote()
        assert fee.max_fee_per_gas >= fee.max_priority_fee_per_gas >= 0
        assert fee.max_fee_per_gas > 0

    # -- delivery -----------------------------------------------------------------------

    def test_deliver_a_transfer(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        """Bridge a transfer, simulate, sign, send and confirm its delivery; sending the
        same transaction again is not an error."""
        dst, dest = _destination_adapter(adapter, route), route.destination
        recipient = chain.fresh_address()
        sent = route.transfer(recipient, 4242)
        observed = _observed(adapter, chain, sent)
        message = observed.message
        assert message.dst_chain_id == dest.chain_id
        assert chain.same_address(message.sender, sent.sender)
        assert dest.same_address(message.recipient, sent.recipient)
        assert message.payload == sent.payload
        assert dst.is_delivered(dest.gateway, message.id) is False

        before = dst.head().number
        supply = dst.token_supply(route.wrapped_token)
        nonce = dst.account_nonce(route.relayer_address)
        batch = [_attested(dst, route, message)]
        gas = dst.simulate_delivery(dest.gateway, batch, route.relayer_address)
        assert gas > 21_000
        fee = dst.fee_quote()
        signed = dst.sign_delivery(dest.gateway, batch, route.relayer_key, nonce, fee, gas)
        assert HASH_RE.match(signed.tx_hash)
        assert dest.same_address(signed.sender, route.relayer_address)
        assert (signed.nonce, signed.fee, signed.gas) == (nonce, fee, gas)
        assert dst.account_nonce(route.relayer_address, pending=True) == nonce  # nothing sent

        assert dst.send_raw(signed.raw) == signed.tx_hash
        assert dst.send_raw(signed.raw) == signed.tx_hash  # pending or mined: not an error
        receipt = _wait_receipt(dst, signed.tx_hash, route.receipt_timeout)
        assert receipt.success
        assert dst.send_raw(signed.raw) == signed.tx_hash  # mined: still not an error
        assert dst.account_nonce(route.relayer_address) == nonce + 1

        assert dst.is_delivered(dest.gateway, message.id) is True
        outcomes = dst.delivery_outcomes(dest.gateway, receipt.block_number, receipt.block_number)
        ours = [o for o in outcomes if o.message_id == message.id]
        assert [(o.status, o.tx_hash) for o in ours] == [(DeliveryStatus.DELIVERED, signed.tx_hash)]
        assert ours[0].block_number == receipt.block_number

        assert dst.token_balance(route.wrapped_token, recipient) == 4242
        assert dst.token_balance(route.wrapped_token, recipient, block=before) == 0
        assert dst.token_supply(route.wrapped_token) == supply + 4242
        assert dst.token_supply(route.wrapped_token, block=before) == supply

    def test_redelivery_is_skipped(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        """Delivering a message again is harmless: in a batch with a new one, the delivered
        one is reported skipped and the recipient is not paid twice."""
        dst, dest = _destination_adapter(adapter, route), route.destination
        recipient = chain.fresh_address()
        first = _observed(adapter, chain, route.transfer(recipient, 11)).message
        signed = _signed_delivery(dst, route, [_attested(dst, route, first)])
        dst.send_raw(signed.raw)
        assert _wait_receipt(dst, signed.tx_hash, route.receipt_timeout).success
        second = _observed(adapter, chain, route.transfer(recipient, 22)).message
        batch = [_attested(dst, route, first), _attested(dst, route, second)]
        again = _signed_delivery(dst, route, batch)
        assert dst.send_raw(again.raw) == again.tx_hash
        receipt = _wait_receipt(dst, again.tx_hash, route.receipt_timeout)
        assert receipt.success
        outcomes = dst.delivery_outcomes(dest.gateway, receipt.block_number, receipt.block_number)
        statuses = {o.message_id: o.status for o in outcomes if o.tx_hash == again.tx_hash}
        assert statuses == {first.id: DeliveryStatus.SKIPPED, second.id: DeliveryStatus.DELIVERED}
        assert dst.is_delivered(dest.gateway, first.id) and dst.is_delivered(
            dest.gateway, second.id
        )
        assert dst.token_balance(route.wrapped_token, recipient) == 33

    def test_recipient_failure_is_an_outcome(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        """The destination bridge refuses a message that no bridge sent: the delivery
        transaction succeeds and reports the message as failed, not delivered. The send
        goes through a dead endpoint first (transport errors fail over)."""
        dest = route.destination
        sent = chain.send_message(dest.chain_id, dest.bridge, b"not a transfer")
        message = _observed(adapter, chain, sent).message
        urls = [chain.dead_urls[0], *dest.rpc_urls]
        dst = type(adapter)(urls, timeout=dest.timeout)
        signed = _signed_delivery(dst, route, [_attested(dst, route, message)])
        assert dst.send_raw(signed.raw) == signed.tx_hash
        receipt = _wait_receipt(dst, signed.tx_hash, route.receipt_timeout)
        assert receipt.success
        outcomes = dst.delivery_outcomes(dest.gateway, receipt.block_number, receipt.block_number)
        (failed,) = [o for o in outcomes if o.message_id == message.id]
        assert failed.status is DeliveryStatus.FAILED
        assert failed.tx_hash == signed.tx_hash and failed.reason
        assert dst.is_delivered(dest.gateway, message.id) is False

    def test_batches_in_a_row_get_the_gas_they_need(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        """Batches simulated one after another (an adapter may guess the gas of the next from
        the last): each transaction goes through, and no recipient is under-supplied, even
        when the next batch's messages ask for far more gas than the last one's did."""
        dst, dest = _destination_adapter(adapter, route), route.destination
        recipient = chain.fresh_address()
        cheap = [_observed(adapter, chain, route.transfer(recipient, 1)).message for _ in range(10)]
        costly = [
            _observed(
                adapter,
                chain,
                chain.send_message_with_gas(dest.chain_id, dest.bridge, b"x", 900_000),
            ).message
            for _ in range(10)
        ]
        more = [_observed(adapter, chain, route.transfer(recipient, 1)).message for _ in range(10)]
        for batch in (cheap, costly, more):
            signed = _signed_delivery(dst, route, [_attested(dst, route, m) for m in batch])
            dst.send_raw(signed.raw)
            receipt = _wait_receipt(dst, signed.tx_hash, route.receipt_timeout)
            assert receipt.success
            found = dst.delivery_outcomes(dest.gateway, receipt.block_number, receipt.block_number)
            ours = [o for o in found if o.tx_hash == signed.tx_hash]
            assert len(ours) == len(batch)
            # the bridge refuses the costly plain messages, on its own, never for want of gas
            assert not any("OutOfGas" in (o.reason or "") for o in ours)
        assert dst.token_balance(route.wrapped_token, recipient) == 20

    def test_simulation_refuses_bad_signatures(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        dst, dest = _destination_adapter(adapter, route), route.destination
        message = _foreign_message(route, chain)
        pending = dst.account_nonce(route.relayer_address, pending=True)
        one = [_attested(dst, route, message, count=1)]
        with pytest.raises(SimulationError) as raised:
            dst.simulate_delivery(dest.gateway, one, route.relayer_address)
        assert "InsufficientSignatures" in raised.value.reason
        text = str(raised.value)
        assert dest.gateway.lower() in text.lower() and "1 message" in text
        assert "InsufficientSignatures" in text

        good = _attested(dst, route, message)
        swapped = [SignedMessage(message, tuple(reversed(good.signatures)))]
        with pytest.raises(SimulationError) as raised:
            dst.simulate_delivery(dest.gateway, swapped, route.relayer_address)
        assert "SignersNotAscending" in raised.value.reason
        assert dst.account_nonce(route.relayer_address, pending=True) == pending

    @offline
    def test_send_refuses_a_used_nonce(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        """A transaction at a nonce the account already used (and that the node never saw)
        is refused as NonceTooLowError."""
        chain.send_message(chain.remote_chain_id, chain.fresh_address(), b"n")
        batch = [SignedMessage(_foreign_message(route, chain), (b"\x00" * 65,))]
        signed = adapter.sign_delivery(
            chain.gateway, batch, chain.funded_key, 0, adapter.fee_quote(), 300_000
        )
        with pytest.raises(NonceTooLowError):
            adapter.send_raw(signed.raw)

    @offline
    def test_send_refuses_garbage(self, adapter: ChainAdapter) -> None:
        with pytest.raises(AdapterError) as raised:
            adapter.send_raw(b"\x02not a transaction")
        assert not isinstance(raised.value, EndpointUnavailableError)

    @offline
    def test_signing_keeps_the_key_secret(
        self, adapter: ChainAdapter, chain: ConformanceChain, route: DeliveryRoute
    ) -> None:
        batch = [SignedMessage(_foreign_message(route, chain), ())]
        fee = adapter.fee_quote()
        bad_key = "0x" + "5e" * 31 + "zz"
        with pytest.raises((AdapterError, ValueError)) as raised:
            adapter.sign_delivery(chain.gateway, batch, bad_key, 0, fee, 100_000)
        assert "5e5e5e" not in str(raised.value)
        signed = adapter.sign_delivery(chain.gateway, batch, route.relayer_key, 7, fee, 100_000)
        key_body = route.relayer_key.lower().removeprefix("0x")
        assert key_body not in repr(signed).lower()
