"""The conformance suite for the EVM adapter on four independent node implementations (anvil,
Hardhat 2, Ganache 7, geth --dev), plus EVM-only checks (quorum, batches, delivery outcomes
through a real signed delivery, the attestation digest against the deployed Gateway, each
node's block tags, and how anvil's transaction pool answers).

The four nodes form one ring of islands for the module (a block per transaction, contracts
deployed and wired): each node is the source of the suite's messages once, and the
destination of the deliveries of the node before it, so every node is both with one process
each. What a node cannot do itself, its fixture provides and says how (EvmChain.describe)."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from web3 import Web3

from adapters.base import (
    NO_RATE_LIMIT,
    AdapterError,
    BridgeOperator,
    DeliveryStatus,
    EndpointUnavailableError,
    FinalityPolicy,
    Message,
    NonceTooLowError,
    QuorumError,
    RateLimit,
    SignedMessage,
    SimulationError,
    UnderpricedError,
)
from adapters.evm.adapter import EvmAdapter, revert_reason
from adapters.evm.devnet import (
    DEV_ACCOUNTS,
    VALIDATORS,
    Deployment,
    Devnet,
    DevnetChain,
    IslandSpec,
    Transactor,
    contract,
    deploy_contracts,
    up_islands,
)
from adapters.evm.nodes import (
    DevnetError,
    LocalNode,
    NodeControl,
    NodeKind,
    rpc_call,
    start_anvil,
)
from adapters.registry import create_adapter
from hub.domain.attestation import attestation_digest, sign_digest
from tests.conformance.endpoints import ProviderProxy
from tests.conformance.suite import (
    AdapterConformance,
    ConformanceChain,
    DeliveryRoute,
    SentMessage,
)
from tests.fixtures.chains import with_free_ports
from tests.integration.rpcproxy import RpcProxy

# Conformance messages go to a chain id no devnet has, so no relayer ever delivers them.
NOWHERE_CHAIN_ID = 4_242_424
SENDER = DEV_ACCOUNTS[3]  # a spare account: the relayer and deployer keys stay untouched
RELAYER = DEV_ACCOUNTS[6]  # the suite's delivery tests relay with a key no other test uses
TRANSFER_TYPES = ["uint64", "address", "address", "address", "uint256"]
# The ring: each node delivers to the next. Chain ids of their own (geth --dev's is set by
# the genesis nodes.py writes).
RING = (NodeKind.ANVIL, NodeKind.HARDHAT, NodeKind.GANACHE, NodeKind.GETH)
RING_CHAIN_IDS = 32_100
# Most blocks one log query may span: geth refuses more itself (--rpc.rangelimit, which
# bounds end - start); the others have no limit, so a provider's proxy refuses for them.
LOG_RANGE_LIMIT = 8


def _fresh_address() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


class EvmChain:
    """Acts on one devnet chain with web3 and the node's own methods, independently of the
    adapter."""

    def __init__(self, chain: DevnetChain, limited_urls: Sequence[str] = ()) -> None:
        self.chain = chain
        self.control = NodeControl(chain.kind, chain.rpc_url)
        self.limited_urls = tuple(limited_urls) or (chain.rpc_url,)
        self.w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        self.gateway = contract(self.w3, "Gateway", chain.deployment.gateway)
        self.token = contract(self.w3, "TestToken", chain.deployment.test_token)

    def send_message(
        self, dst_chain_id: int, recipient: str, payload: bytes, gas_limit: int | None = None
    ) -> SentMessage:
        tx = Transactor(self.w3, SENDER.private_key)
        args = [dst_chain_id, to_checksum_address(recipient), payload]
        call = self.gateway.functions.send(*args, *([] if gas_limit is None else [gas_limit]))
        tx_hash = tx.send(call, "Gateway.send")
        (receipt,) = tx.wait()
        return SentMessage(
            tx_hash=tx_hash.to_0x_hex(),
            block_number=receipt["blockNumber"],
            sender=SENDER.address,
            dst_chain_id=dst_chain_id,
            recipient=recipient,
            payload=payload,
        )

    def mine(self, blocks: int) -> None:
        self.control.mine(blocks)

    def node_block_hash(self, number: int) -> str | None:
        response = self.w3.provider.make_request(
            "eth_getBlockByNumber",  # type: ignore[arg-type]
            [hex(number), False],
        )
        block = response.get("result")
        return None if block is None else str(block["hash"])

    def gateway_message_id(self, message: Message) -> bytes:
        return bytes(self.gateway.functions.messageId(message.as_tuple()).call())

    def mint_tokens(self, holder: str, amount: int) -> None:
        tx = Transactor(self.w3, SENDER.private_key)
        tx.send(self.token.functions.mint(to_checksum_address(holder), amount), "mint")
        tx.wait()

    def transfer(self, destination: DevnetChain, to: str, amount: int) -> SentMessage:
        """Bridge `amount` ITT (minted for the purpose) to `to` on `destination`."""
        bridge = contract(self.w3, "TokenBridge", self.chain.deployment.bridge)
        home_token, recipient = self.token.address, to_checksum_address(to)
        tx = Transactor(self.w3, SENDER.private_key)
        tx.send(self.token.functions.mint(SENDER.address, amount), "mint")
        tx.send(self.token.functions.approve(bridge.address, amount), "approve")
        tx.wait()  # bridgeOut is estimated against the approval
        out = bridge.functions.bridgeOut(home_token, destination.chain_id, recipient, amount)
        tx.send(out, "bridgeOut")
        receipt = tx.wait()[-1]
        fields = [self.chain.chain_id, home_token, SENDER.address, recipient, amount]
        return SentMessage(
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=receipt["blockNumber"],
            sender=bridge.address,
            dst_chain_id=destination.chain_id,
            recipient=destination.deployment.bridge,
            payload=abi_encode(TRANSFER_TYPES, fields),
        )

    def describe(self, threshold: int) -> ConformanceChain:
        """The chain as the suite sees it. A reorg is anvil_reorg on anvil, evm_snapshot and
        evm_revert on Hardhat and Ganache (they have no reorg), and debug_setHead on geth,
        whose pool takes the transactions back; mining an empty block on geth --dev is an
        empty transaction of its developer account (it has no mining method)."""
        dep = self.chain.deployment
        return ConformanceChain(
            chain_id=self.chain.chain_id,
            rpc_urls=(self.chain.rpc_url,),
            gateway=dep.gateway,
            bridge=dep.bridge,
            token=dep.test_token,
            funded_key=SENDER.private_key,
            validators=tuple(v.address for v in VALIDATORS),
            threshold=threshold,
            remote_chain_id=NOWHERE_CHAIN_ID,
            send_message=self.send_message,
            send_message_with_gas=self.send_message,
            mine=self.mine,
            node_block_hash=self.node_block_hash,
            gateway_message_id=self.gateway_message_id,
            mint_tokens=self.mint_tokens,
            fresh_address=_fresh_address,
            checkpoint=self.control.checkpoint,
            reorg_to=lambda checkpoint, blocks: self.control.reorg_to(str(checkpoint), blocks),
            limited_urls=self.limited_urls,
            log_range_limit=LOG_RANGE_LIMIT,
            # Ganache 7 estimates gas by running the transaction over and over in JavaScript:
            # 1-2 s for a delivery on an idle machine, more on a busy one
            timeout=30.0 if self.chain.kind is NodeKind.GANACHE else 5.0,
        )


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """One node of each implementation, a block per transaction, wired together."""
    state_dir = tmp_path_factory.mktemp("ring")
    specs = [
        IslandSpec(
            kind,
            block_time=None,
            name=kind.value,
            log_range_limit=LOG_RANGE_LIMIT - 1 if kind is NodeKind.GETH else None,
        )
        for kind in RING
    ]
    devnet = with_free_ports(
        len(specs),
        lambda base: up_islands(specs, base, state_dir, chain_id_base=RING_CHAIN_IDS),
    )
    try:
        yield devnet
    finally:
        devnet.stop()


@pytest.fixture(scope="module")
def ring_chains(ring: Devnet) -> Iterator[dict[str, EvmChain]]:
    """Each ring node as the suite acts on it; the three without a log range limit of their
    own get a provider's proxy in front that refuses ranges over LOG_RANGE_LIMIT blocks."""
    with ExitStack() as stack:
        chains = {}
        for devnet_chain in ring:
            limited: tuple[str, ...] = ()
            if devnet_chain.kind is not NodeKind.GETH:
                proxy = ProviderProxy(devnet_chain.rpc_url, max_log_range=LOG_RANGE_LIMIT)
                limited = (stack.enter_context(proxy).url,)
            chains[devnet_chain.name] = EvmChain(devnet_chain, limited)
        yield chains


@pytest.fixture(scope="module", params=[kind.value for kind in RING])
def evm_chain(request: pytest.FixtureRequest, ring_chains: dict[str, EvmChain]) -> EvmChain:
    return ring_chains[request.param]


@pytest.fixture(scope="module")
def chain(evm_chain: EvmChain, ring: Devnet) -> ConformanceChain:
    return evm_chain.describe(ring.threshold)


@pytest.fixture
def adapter(chain: ConformanceChain) -> EvmAdapter:
    return EvmAdapter(chain.rpc_urls, timeout=chain.timeout)


def attest(destination: DevnetChain, message_id: bytes, epoch: int, count: int) -> list[bytes]:
    """Signatures of the first `count` devnet validators, ordered by signer address as the
    gateway requires, made with the hub's own digest and signing code."""
    gateway = destination.deployment.gateway
    digest = attestation_digest(message_id, epoch, destination.chain_id, gateway)
    signers = sorted(VALIDATORS[:count], key=lambda v: int(v.address, 16))
    return [sign_digest(digest, v.private_key) for v in signers]


def _next_in_ring(ring: Devnet, name: str) -> DevnetChain:
    names = [c.name for c in ring]
    return ring.chain(names[(names.index(name) + 1) % len(names)])


@pytest.fixture(scope="module")
def route(
    evm_chain: EvmChain, chain: ConformanceChain, ring: Devnet, ring_chains: dict[str, EvmChain]
) -> DeliveryRoute:
    """From the chain under test to the next node of the ring."""
    dst = _next_in_ring(ring, evm_chain.chain.name)
    return DeliveryRoute(
        source=chain,
        destination=ring_chains[dst.name].describe(ring.threshold),
        relayer_key=RELAYER.private_key,
        relayer_address=RELAYER.address,
        transfer=lambda to, amount: evm_chain.transfer(dst, to, amount),
        wrapped_token=evm_chain.chain.wrapped_tokens[dst.name],
        attest=lambda message_id, epoch, count: attest(dst, message_id, epoch, count),
    )


class TestEvmConformance(AdapterConformance):
    """The suite, unchanged, against each node of the ring."""


@pytest.fixture(scope="module")
def anvil_chain(anvil_devnet: Devnet) -> ConformanceChain:
    """alpha of the session's anvil devnet, for the EVM-only checks below."""
    return EvmChain(anvil_devnet.chain("alpha")).describe(anvil_devnet.threshold)


# -- EVM-only checks --------------------------------------------------------------------


def test_registry_builds_the_evm_adapter(chain: ConformanceChain) -> None:
    adapter = create_adapter("evm", chain.rpc_urls, timeout=3.0)
    assert isinstance(adapter, EvmAdapter)
    assert adapter.chain_id() == chain.chain_id


def test_bridge_operator_reads(anvil_chain: ConformanceChain, anvil_devnet: Devnet) -> None:
    """The token-bridge reads the hub shows: no limit, not paused, decimals of both kinds."""
    adapter = EvmAdapter(anvil_chain.rpc_urls)
    assert isinstance(adapter, BridgeOperator)
    beta = anvil_devnet.chain("beta")
    assert adapter.token_decimals(anvil_chain.token) == 18
    assert adapter.token_decimals(beta.wrapped_tokens["alpha"]) == 18  # beta's ITT on alpha
    assert adapter.bridge_paused(anvil_chain.bridge) is False
    for outbound in (True, False):
        state = adapter.rate_limit(anvil_chain.bridge, beta.chain_id, anvil_chain.token, outbound)
        expected = RateLimit(
            remote_chain_id=beta.chain_id,
            token=anvil_chain.token,
            outbound=outbound,
            capacity=0,
            refill_per_second=0,
        )
        assert state.limit == expected and not state.limit.limited
        assert state.available == NO_RATE_LIMIT


def test_constructor_refuses_bad_options() -> None:
    with pytest.raises(ValueError, match="at least one"):
        EvmAdapter([])
    with pytest.raises(ValueError, match="quorum"):
        EvmAdapter(["http://127.0.0.1:1"], quorum=2)


def _two_urls(url: str) -> list[str]:
    """Two URLs for the same node, as two endpoints."""
    return [url, url.replace("127.0.0.1", "localhost")]


def test_quorum_of_agreeing_endpoints(anvil_chain: ConformanceChain) -> None:
    adapter = EvmAdapter(_two_urls(anvil_chain.rpc_urls[0]), quorum=2)
    sent = anvil_chain.send_message(NOWHERE_CHAIN_ID, _fresh_address(), b"q")
    found = adapter.messages(anvil_chain.gateway, sent.block_number, sent.block_number)
    assert [m.tx_hash for m in found if m.tx_hash == sent.tx_hash] == [sent.tx_hash]
    final = adapter.finalized_block(FinalityPolicy.parse(2))
    assert final.hash == anvil_chain.node_block_hash(final.number)
    assert adapter.block_hash(final.number) == final.hash


def test_quorum_with_a_dead_endpoint(anvil_chain: ConformanceChain) -> None:
    adapter = EvmAdapter([anvil_chain.rpc_urls[0], "http://127.0.0.1:1"], quorum=2, timeout=2.0)
    assert adapter.head().number > 0  # plain reads still fail over
    with pytest.raises(QuorumError, match=r"127\.0\.0\.1:1"):
        adapter.block_hash(1)
    with pytest.raises(QuorumError):
        adapter.finalized_block(FinalityPolicy.parse(1))


def test_quorum_of_disagreeing_endpoints(anvil_devnet: Devnet) -> None:
    alpha, beta = anvil_devnet.chain("alpha"), anvil_devnet.chain("beta")
    adapter = EvmAdapter([alpha.rpc_url, beta.rpc_url], quorum=2)
    with pytest.raises(QuorumError, match="agree"):
        adapter.chain_id()
    # Early blocks can be equal: anvil's genesis does not depend on the chain id, so two chains
    # started in the same second share it, and their first blocks may be empty. Any block after
    # the deployments differs (the transactions are signed for different chain ids).
    after_deployments = min(EvmAdapter([c.rpc_url]).head().number for c in (alpha, beta))
    with pytest.raises(QuorumError, match="agree"):
        adapter.block_hash(after_deployments)


def test_failover_prefers_the_last_healthy_endpoint(anvil_chain: ConformanceChain) -> None:
    adapter = EvmAdapter(["http://127.0.0.1:1", anvil_chain.rpc_urls[0]], timeout=2.0, cooldown=60)
    adapter.head()
    assert adapter._order()[0].url == anvil_chain.rpc_urls[0]


def test_dead_endpoint_error_is_one_readable_line() -> None:
    adapter = EvmAdapter(["http://127.0.0.1:1"], timeout=1.0)
    with pytest.raises(EndpointUnavailableError) as raised:
        adapter.chain_id()
    assert "\n" not in str(raised.value)
    assert "http://127.0.0.1:1" in str(raised.value)


def test_block_tags_of_each_node(chain: ConformanceChain, evm_chain: EvmChain) -> None:
    """What `safe` and `finalized` mean differs by node, and the adapter passes the tags
    through: anvil answers head - 32 and head - 64 (its epoch of 32 slots), Hardhat and
    Ganache the head itself (a dev chain is final at once), geth --dev `safe` as the head and
    `finalized` as the last multiple of 32 (its simulated beacon's epoch)."""
    adapter = EvmAdapter(chain.rpc_urls)
    evm_chain.mine(33)
    head = adapter.head().number
    safe = adapter.finalized_block(FinalityPolicy.parse("safe"))
    final = adapter.finalized_block(FinalityPolicy.parse("finalized"))
    kind = evm_chain.chain.kind
    if kind is NodeKind.ANVIL:
        expected = (max(0, head - 32), max(0, head - 64))
    elif kind is NodeKind.GETH:
        expected = (head, head if head % 32 == 0 else (head - 1) // 32 * 32)
    else:
        expected = (head, head)
    assert (safe.number, final.number) == expected
    assert safe.hash == chain.node_block_hash(safe.number)
    assert final.hash == chain.node_block_hash(final.number)


def test_a_provider_without_batches(chain: ConformanceChain) -> None:
    """The gateway's configuration is read in one JSON-RPC batch; an endpoint that refuses
    batches (as some providers do) is read one call at a time instead."""
    direct = EvmAdapter(chain.rpc_urls).gateway_config(chain.gateway)
    with ProviderProxy(chain.rpc_urls[0], refuse_batches=True) as proxy:
        assert EvmAdapter([proxy.url]).gateway_config(chain.gateway) == direct
        assert proxy.refused_batches >= 1


def test_revert_reason() -> None:
    error = bytes.fromhex("08c379a0") + Web3().codec.encode(["string"], ["nope"])
    assert revert_reason(error) == "nope"
    assert revert_reason(b"") == "reverted without a reason"
    assert revert_reason(b"\x12\x34") == "0x1234"
    wrong = Web3.keccak(text="WrongDestination()")[:4]
    assert revert_reason(wrong) == "WrongDestination()"
    limited = Web3.keccak(text="RateLimited(uint64,address,bool,uint256,uint256)")[:4]
    args = [7, DEV_ACCOUNTS[0].address.lower(), False, 5, 6]
    limited += Web3().codec.encode(["uint64", "address", "bool", "uint256", "uint256"], args)
    assert revert_reason(limited) == f"RateLimited(7, {DEV_ACCOUNTS[0].address}, False, 5, 6)"


# -- a real signed delivery ---------------------------------------------------------------


def _attest(gateway: Any, message_id: bytes, signers: Sequence[Any]) -> list[bytes]:
    epoch = gateway.functions.epoch().call()
    digest = gateway.functions.attestationDigest(message_id, epoch).call()
    ordered = sorted(signers, key=lambda v: int(v.address, 16))
    return [bytes(Account.unsafe_sign_hash(digest, v.private_key).signature) for v in ordered]


def test_delivery_outcomes(anvil_devnet: Devnet) -> None:
    """Bridge ITT alpha -> beta, deliver it on beta with validator signatures, then deliver
    it again (skipped) next to a message whose recipient has no code (failed)."""
    alpha, beta = anvil_devnet.chain("alpha"), anvil_devnet.chain("beta")
    src, dst = EvmChain(alpha), EvmChain(beta)
    user = DEV_ACCOUNTS[4]
    bridge = contract(src.w3, "TokenBridge", alpha.deployment.bridge)
    src.mint_tokens(user.address, 10)
    tx = Transactor(src.w3, user.private_key)
    tx.send(src.token.functions.approve(bridge.address, 10), "approve")
    tx.wait()
    tx.send(bridge.functions.bridgeOut(src.token.address, beta.chain_id, user.address, 10), "out")
    receipt = tx.wait()[-1]

    source = EvmAdapter([alpha.rpc_url])
    (observed,) = [
        m
        for m in source.messages(
            alpha.deployment.gateway, receipt["blockNumber"], receipt["blockNumber"]
        )
        if m.tx_hash == receipt["transactionHash"].to_0x_hex()
    ]
    good = observed.message
    bad = replace(good, nonce=10**9, sender=SENDER.address, recipient=_fresh_address())
    signers = VALIDATORS[: anvil_devnet.threshold]
    sigs = {m.id: _attest(dst.gateway, m.id, signers) for m in (good, bad)}

    relayer = Transactor(dst.w3, DEV_ACCOUNTS[5].private_key)
    first = relayer.send(
        dst.gateway.functions.deliverBatch([good.as_tuple()], [sigs[good.id]]), "1"
    )
    batch = [good.as_tuple(), bad.as_tuple()]
    second = relayer.send(
        dst.gateway.functions.deliverBatch(batch, [sigs[good.id], sigs[bad.id]]), "2"
    )
    receipts = relayer.wait()

    target = EvmAdapter([beta.rpc_url])
    outcomes = target.delivery_outcomes(
        beta.deployment.gateway, receipts[0]["blockNumber"], receipts[-1]["blockNumber"]
    )
    ours = {(o.tx_hash, o.message_id): o for o in outcomes}
    assert ours[(first.to_0x_hex(), good.id)].status is DeliveryStatus.DELIVERED
    assert ours[(second.to_0x_hex(), good.id)].status is DeliveryStatus.SKIPPED
    failed = ours[(second.to_0x_hex(), bad.id)]
    assert failed.status is DeliveryStatus.FAILED and failed.reason
    assert target.is_delivered(beta.deployment.gateway, good.id) is True
    assert target.is_delivered(beta.deployment.gateway, bad.id) is False
    wrapped = alpha.wrapped_tokens["beta"]  # alpha's ITT, wrapped on beta
    assert target.token_balance(wrapped, user.address) >= 10


def test_normalize_address_is_eip55() -> None:
    adapter = EvmAdapter(["http://127.0.0.1:1"])
    checksummed = DEV_ACCOUNTS[0].address
    assert adapter.normalize_address(checksummed.lower()) == checksummed
    assert adapter.normalize_address(checksummed.upper().replace("0X", "0x")) == checksummed
    with pytest.raises(ValueError, match="checksum"):
        adapter.normalize_address("0xF39f" + checksummed[6:])


# -- the devnet itself --------------------------------------------------------------------


def test_devnet_json(anvil_devnet: Devnet) -> None:
    data = json.loads(anvil_devnet.json_path.read_text())
    names = [c["name"] for c in data["chains"]]
    assert names == ["alpha", "beta", "gamma"]
    alpha = data["chains"][0]
    assert alpha["chain_id"] == 31337 and alpha["finality"] == 2
    assert set(alpha["wrapped_tokens"]) == {"beta", "gamma"}
    assert data["asset"] == {
        "symbol": "ITT",
        "home_chain": "alpha",
        "home_token": alpha["test_token"],
        "deployments": alpha["wrapped_tokens"],
    }
    roles = [a["role"] for a in data["accounts"]]
    assert roles[:3] == ["deployer", "relayer", "user"] and roles.count("validator") == 3
    assert data["validators"] == {"threshold": 2, "addresses": [v.address for v in VALIDATORS]}


def test_devnet_is_wired(anvil_devnet: Devnet) -> None:
    for chain in anvil_devnet:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        bridge = contract(w3, "TokenBridge", chain.deployment.bridge)
        token = contract(w3, "TestToken", chain.deployment.test_token)
        assert token.functions.balanceOf(DEV_ACCOUNTS[2].address).call() >= 1_000 * 10**18
        for other in anvil_devnet:
            if other is chain:
                continue
            assert bridge.functions.remoteBridge(other.chain_id).call() == other.deployment.bridge
            wrapped = bridge.functions.wrappedToken(other.chain_id, other.deployment.test_token)
            address = wrapped.call()
            assert address == other.wrapped_tokens[chain.name]
            name = contract(w3, "BridgedToken", address).functions.name().call()
            assert name == f"Wrapped ITT ({other.name})"


def test_start_anvil_refuses_a_taken_port(bare_anvil: LocalNode) -> None:
    with pytest.raises(DevnetError, match="already in use"):
        start_anvil(bare_anvil.port, 1, block_time=None)


def test_bare_anvil_has_no_contracts(bare_anvil: LocalNode) -> None:
    adapter = EvmAdapter([bare_anvil.rpc_url])
    assert adapter.chain_id() == bare_anvil.chain_id
    assert adapter.code_at(DEV_ACCOUNTS[0].address) == b""


def test_anvil_stop_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with start_anvil(port, 31_777, block_time=0.25, state_dir=tmp_path) as node:
        assert EvmAdapter([node.rpc_url]).chain_id() == 31_777
    assert not node.running()
    with pytest.raises(ProcessLookupError):
        os.killpg(node.pid, 0)
    assert (tmp_path / "anvil-31777.log").exists()


def test_anvil_keeps_its_old_states_in_its_own_home_and_drops_them(tmp_path: Path) -> None:
    """Past its last 500 blocks anvil writes states to ~/.foundry/anvil/tmp and never
    removes them (77 GB of them once filled the test machine's disk): its home is its own
    directory, which goes when it stops."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with start_anvil(port, 31_778, block_time=None, state_dir=tmp_path) as node:
        rpc_call(node.rpc_url, "anvil_mine", [hex(700)])
        assert EvmAdapter([node.rpc_url]).head().number == 700
        states = tmp_path / "anvil-31778" / ".foundry" / "anvil" / "tmp"
        assert any(path.is_file() for path in states.rglob("*"))
    assert not (tmp_path / "anvil-31778").exists()
    assert (tmp_path / "anvil-31778.log").exists()


def test_anvil_safe_and_finalized_follow_the_epoch(bare_anvil: LocalNode) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with start_anvil(port, 31_778, block_time=None, slots_in_epoch=2) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        w3.provider.make_request("anvil_mine", ["0xa"])  # type: ignore[arg-type]
        adapter = EvmAdapter([node.rpc_url])
        assert adapter.finalized_block(FinalityPolicy.parse("safe")).number == 8
        assert adapter.finalized_block(FinalityPolicy.parse("finalized")).number == 6


# -- the attestation digest and anvil's transaction pool -----------------------------------


def test_attestation_digest_matches_the_gateway(anvil_devnet: Devnet) -> None:
    """The hub's EIP-712 digest equals the deployed Gateway's, per chain, id and epoch."""
    for devnet_chain in anvil_devnet:
        gateway = EvmChain(devnet_chain).gateway
        address = devnet_chain.deployment.gateway
        for message_id in (b"\x00" * 32, b"\xff" * 32, secrets.token_bytes(32)):
            for epoch in (1, gateway.functions.epoch().call(), 2**64 - 1):
                on_chain = bytes(gateway.functions.attestationDigest(message_id, epoch).call())
                ours = attestation_digest(message_id, epoch, devnet_chain.chain_id, address)
                assert ours == on_chain


@pytest.fixture(scope="module")
def private_anvil(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalNode, Deployment]]:
    """An anvil of this module's own (automine), with the contracts deployed: its tests
    pause the gateway and stop mining, which the shared devnet must never see."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state_dir = tmp_path_factory.mktemp("private-anvil")
    with start_anvil(port, 31_779, block_time=None, state_dir=state_dir) as node:
        members = [v.address for v in VALIDATORS]
        deployment = deploy_contracts(node.rpc_url, DEV_ACCOUNTS[0].private_key, members, 2)
        yield node, deployment


def _private_batch(deployment: Deployment, signers: Sequence[Any]) -> list[SignedMessage]:
    message = Message(
        src_chain_id=1,
        src_gateway=_fresh_address(),
        dst_chain_id=deployment.chain_id,
        nonce=0,
        sender=SENDER.address,
        recipient=_fresh_address(),
        gas_limit=200_000,
        payload=b"p",
    )
    digest = attestation_digest(message.id, 1, deployment.chain_id, deployment.gateway)
    ordered = sorted(signers, key=lambda v: int(v.address, 16))
    return [SignedMessage(message, tuple(sign_digest(digest, v.private_key) for v in ordered))]


def test_simulation_reasons(private_anvil: tuple[LocalNode, Deployment]) -> None:
    node, deployment = private_anvil
    adapter, gateway = EvmAdapter([node.rpc_url]), deployment.gateway
    good = _private_batch(deployment, VALIDATORS[:2])
    assert adapter.simulate_delivery(gateway, good, RELAYER.address) > 50_000
    stranger = _private_batch(deployment, [VALIDATORS[0], DEV_ACCOUNTS[5]])
    with pytest.raises(SimulationError) as raised:
        adapter.simulate_delivery(gateway, stranger, RELAYER.address)
    assert raised.value.reason == "UnknownSigner()"
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    owner = Transactor(w3, DEV_ACCOUNTS[0].private_key)
    owner.send(contract(w3, "Gateway", gateway).functions.pause(), "pause")
    owner.wait()
    try:
        with pytest.raises(SimulationError) as raised:
            adapter.simulate_delivery(gateway, good, RELAYER.address)
        assert raised.value.reason == "EnforcedPause()"
        assert gateway in str(raised.value) and "1 message" in str(raised.value)
    finally:
        owner.send(contract(w3, "Gateway", gateway).functions.unpause(), "unpause")
        owner.wait()


def _rpc(node: LocalNode, method: str, *params: Any) -> Any:
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    return w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


def test_pool_answers(private_anvil: tuple[LocalNode, Deployment]) -> None:
    """With mining stopped: resending is not an error, a replacement needs both fees 10%
    higher, and a nonce already mined is NonceTooLowError unless it is the same tx."""
    node, deployment = private_anvil
    adapter, gateway = EvmAdapter([node.rpc_url]), deployment.gateway
    batch = _private_batch(deployment, VALIDATORS[:2])
    nonce = adapter.account_nonce(RELAYER.address)
    fee = adapter.fee_quote()
    _rpc(node, "evm_setAutomine", False)
    try:
        first = adapter.sign_delivery(gateway, batch, RELAYER.private_key, nonce, fee, 300_000)
        assert adapter.send_raw(first.raw) == first.tx_hash
        assert adapter.send_raw(first.raw) == first.tx_hash  # "transaction already imported"
        assert adapter.account_nonce(RELAYER.address, pending=True) == nonce + 1
        same_fee = adapter.sign_delivery(gateway, batch, RELAYER.private_key, nonce, fee, 300_001)
        with pytest.raises(UnderpricedError, match="underpriced"):
            adapter.send_raw(same_fee.raw)
        bumped = fee.bumped(10)
        replacement = adapter.sign_delivery(
            gateway, batch, RELAYER.private_key, nonce, bumped, 300_000
        )
        assert adapter.send_raw(replacement.raw) == replacement.tx_hash
        _rpc(node, "evm_mine")
    finally:
        _rpc(node, "evm_setAutomine", True)
    receipt = adapter.receipt(replacement.tx_hash)
    assert receipt is not None and receipt.success
    assert adapter.receipt(first.tx_hash) is None
    assert adapter.account_nonce(RELAYER.address) == nonce + 1
    assert adapter.send_raw(replacement.raw) == replacement.tx_hash  # mined: the node has it
    with pytest.raises(NonceTooLowError, match="nonce too low"):
        adapter.send_raw(first.raw)  # replaced, never mined


class _FallsBehind(RpcProxy):
    """A node that answers one head, then falls 40 blocks behind (restarted, or the other node
    of a load balancer): its logs of a range then stop short, without error."""

    def _answer(self, body: Any) -> Any:
        answer = super()._answer(body)
        if isinstance(body, dict) and body.get("method") == "eth_blockNumber" and self.armed:
            self.armed, self.lag = False, 40
        return answer

    armed = False


def test_logs_of_a_node_that_fell_behind_are_not_believed(anvil_chain: ConformanceChain) -> None:
    """The node had the range's last block when asked, and lost it before it answered the
    logs: the answer (the range without its message) is refused, never taken as empty."""
    sent = anvil_chain.send_message(NOWHERE_CHAIN_ID, _fresh_address(), b"behind")
    with _FallsBehind(anvil_chain.rpc_urls[0]) as proxy:
        adapter = EvmAdapter([proxy.url], timeout=3.0)
        for read in (adapter.messages, adapter.delivery_outcomes):
            proxy.armed, proxy.lag = True, 0
            with pytest.raises(AdapterError, match="below block"):
                read(anvil_chain.gateway, sent.block_number, sent.block_number)
        proxy.armed, proxy.lag = False, 0
        found = adapter.messages(anvil_chain.gateway, sent.block_number, sent.block_number)
        assert sent.tx_hash in {m.tx_hash for m in found}


def _disk_used(directory: Path) -> int:
    """Bytes the files under `directory` take on disk (preallocated space counts, as for du)."""
    return sum(path.stat().st_blocks * 512 for path in directory.rglob("*") if path.is_file())


def test_a_geth_dev_chain_takes_little_disk(ring: Devnet) -> None:
    """A geth --dev node with its contracts deployed keeps its data in a few MB: at geth's
    default cache it took 1.2 GB of preallocated logs, and a full test disk stopped the suite."""
    (datadir,) = [path for path in ring.state_dir.glob("geth-*") if path.is_dir()]
    assert _disk_used(datadir) < 64 * 2**20
