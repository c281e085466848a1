"""The Gateway's and TokenBridge's security properties, checked on the deployed contracts of
the devnet.

What an auditor verifies on the chain itself: Python computes the same id (which names the
source gateway) and EIP-712 digest as the contract; a delivery with bad signatures (forged,
too few, duplicated, out of order, for another epoch or another gateway, over a tampered
message, malleable) reverts and leaves nothing delivered; a good one mints exactly once; a
message for another chain is refused; a recipient gets exactly the gas its sender named, so
a looping recipient fails alone and costs the relayer its gas limit plus a bounded overhead;
only a message's recipient can consume it; owners change in two steps; a guardian pauses the
bridge; rate limits refuse and refill; a failed transfer goes back to its sender; a
validator-set change kills the attestations of the old epoch.

Every transfer here goes through the bridges (ITT locked on alpha, minted on beta) and is
delivered before the module ends, so the asset stays balanced for the tests that check it.
Transactions come from fresh accounts, so no other test's nonces are touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_keys.constants import SECPK1_N
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt

from adapters.base import (
    NO_RATE_LIMIT,
    DeliveryStatus,
    Message,
    RateLimit,
    SignedMessage,
    SimulationError,
)
from adapters.evm.adapter import EvmAdapter
from adapters.evm.contracts import decode_revert
from adapters.evm.devnet import DEPLOYER, VALIDATORS, DevAccount, Devnet, DevnetChain, connect
from adapters.evm.devnet import contract as load_contract
from hub.domain.attestation import ATTESTATION_TYPEHASH, attestation_digest, sign_digest

pytestmark = pytest.mark.integration

AMOUNT = 7 * 10**15  # 0.007 ITT per transfer
FAILING_GAS = 1_000_000  # explicit, so a reverting delivery is mined (status 0), not refused
FUNDS = 10**20
PAYLOAD_TYPES = ["uint64", "address", "address", "address", "uint256"]
DEFAULT_GAS_LIMIT = 200_000
# What a one-message delivery with two signatures costs beyond the recipient's gas limit
# (intrinsic gas, calldata, signature checks, the delivered mark, the outcome event); about
# 64k measured. A recipient cannot raise it.
DELIVERY_OVERHEAD_BOUND = 100_000
# Runtime code of a recipient that loops until its gas is gone: JUMPDEST PUSH1 0 JUMP.
LOOP_CODE = bytes.fromhex("5b600056")

Delivery = tuple[Message, list[bytes]]


@dataclass(frozen=True)
class Side:
    """One devnet chain with its contracts."""

    chain: DevnetChain
    w3: Web3
    gateway: Contract
    bridge: Contract
    token: Contract

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id


@dataclass(frozen=True)
class Bridged:
    """An ITT transfer alpha -> beta: the gateway message and who receives the tokens."""

    message: Message
    to: str


def _fresh_address() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


def _side(chain: DevnetChain) -> Side:
    w3 = connect(chain.rpc_url)
    dep = chain.deployment
    return Side(
        chain=chain,
        w3=w3,
        gateway=load_contract(w3, "Gateway", dep.gateway),
        bridge=load_contract(w3, "TokenBridge", dep.bridge),
        token=load_contract(w3, "TestToken", dep.test_token),
    )


def _new_account() -> DevAccount:
    account = Account.create()
    return DevAccount(account.address, account.key.to_0x_hex())


def _funded_account(*sides: Side) -> DevAccount:
    account = _new_account()
    for side in sides:
        side.w3.provider.make_request(
            RPCEndpoint("anvil_setBalance"), [account.address, hex(FUNDS)]
        )
    return account


def _send(
    side: Side,
    account: DevAccount,
    calls: Sequence[ContractFunction | ContractConstructor],
    gas: int | None = None,
) -> list[TxReceipt]:
    """Sign and send `calls` with consecutive nonces; the receipts, whatever their status."""
    signer = Account.from_key(account.private_key)  # DEPLOYER or a fresh account
    nonce = side.w3.eth.get_transaction_count(signer.address, "pending")
    hashes = []
    for i, call in enumerate(calls):
        params: TxParams = {"from": signer.address, "nonce": Nonce(nonce + i)}
        if gas is not None:
            params["gas"] = gas  # no estimate: the transaction is mined even if it reverts
        tx = call.build_transaction(params)
        hashes.append(side.w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction))
    wait = side.w3.eth.wait_for_transaction_receipt
    return [wait(h, timeout=60, poll_latency=0.05) for h in hashes]


def _revert_of(call: ContractFunction, sender: str, gas: int | None = None) -> str:
    """The decoded revert of `call` simulated with eth_call, e.g. "UnknownSigner()"."""
    params: TxParams = {"from": sender}
    if gas is not None:
        params["gas"] = gas
    try:
        call.call(params)
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else ""
        return decode_revert(HexBytes(data)) if data.startswith("0x") else str(exc)
    raise AssertionError(f"{call.fn_name} did not revert")


def _error_name(reason: str) -> str:
    return reason.split("(", 1)[0]


def _ascending(signers: Sequence[DevAccount]) -> list[DevAccount]:
    return sorted(signers, key=lambda s: int(s.address, 16))


def _attest(
    side: Side, message: Message, signers: Sequence[DevAccount], epoch: int = -1
) -> list[bytes]:
    """Signatures for delivery to `side` (its current epoch unless given), in the order given."""
    epoch = side.gateway.functions.epoch().call() if epoch < 0 else epoch
    digest = attestation_digest(message.id, epoch, side.chain_id, side.gateway.address)
    return [sign_digest(digest, s.private_key) for s in signers]


def _events(contract: Contract, event: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    logs = contract.events[event]().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in logs]


def _delivered(side: Side, message: Message) -> bool:
    return bool(side.gateway.functions.delivered(message.id).call())


def _sent_message(side: Side, receipt: TxReceipt) -> Message:
    """The one message a transaction sent through `side`'s gateway, as the adapter reads it."""
    (log,) = side.gateway.events.MessageSent().process_receipt(receipt, errors=DISCARD)
    args = log["args"]
    message = Message(
        src_chain_id=side.chain_id,
        src_gateway=log["address"],
        dst_chain_id=args["dstChainId"],
        nonce=args["nonce"],
        sender=args["sender"],
        recipient=args["recipient"],
        gas_limit=args["gasLimit"],
        payload=bytes(args["payload"]),
    )
    assert message.id == args["id"]
    return message


def _rpc(side: Side, method: str, *params: Any) -> Any:
    response = side.w3.provider.make_request(RPCEndpoint(method), list(params))
    assert "error" not in response, response
    return response.get("result")


def _advance_time(side: Side, seconds: int) -> None:
    _rpc(side, "evm_increaseTime", seconds)
    _rpc(side, "evm_mine")


def _deploy_code(side: Side, account: DevAccount, runtime: bytes) -> str:
    """Deploy `runtime` (at most 32 bytes) as a contract's code, with no constructor."""
    n = len(runtime)
    init = bytes([0x60 + n - 1]) + runtime + bytes([0x60, 0, 0x52, 0x60, n, 0x60, 32 - n, 0xF3])
    signer = Account.from_key(account.private_key)
    tx: TxParams = {
        "from": signer.address,
        "data": HexBytes(init),
        "gas": 100_000,
        "nonce": side.w3.eth.get_transaction_count(signer.address, "pending"),
        "chainId": side.chain_id,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9,
    }
    tx_hash = side.w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
    receipt = side.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    address = to_checksum_address(receipt["contractAddress"])
    assert bytes(side.w3.eth.get_code(address)) == runtime
    return address


def _adapter(side: Side) -> EvmAdapter:
    return EvmAdapter([side.chain.rpc_url])


def _signed(side: Side, message: Message) -> SignedMessage:
    return SignedMessage(message, tuple(_attest(side, message, _ascending(VALIDATORS[:2]))))


def _wait(side: Side, tx_hash: str) -> TxReceipt:
    return side.w3.eth.wait_for_transaction_receipt(
        HexBytes(tx_hash), timeout=60, poll_latency=0.05
    )


def _relay(side: Side, relayer: DevAccount, messages: Sequence[Message]) -> TxReceipt:
    """Deliver `messages` to `side` as the hub's relayer does: simulate, sign, send."""
    adapter, gateway = _adapter(side), side.gateway.address
    batch = [_signed(side, m) for m in messages]
    gas = adapter.simulate_delivery(gateway, batch, relayer.address)
    nonce = adapter.account_nonce(relayer.address, pending=True)
    fee = adapter.fee_quote()
    signed = adapter.sign_delivery(gateway, batch, relayer.private_key, nonce, fee, gas)
    adapter.send_raw(signed.raw)
    receipt = _wait(side, signed.tx_hash)
    assert receipt["status"] == 1
    return receipt


def _high_s_twin(signature: bytes) -> bytes:
    """The other valid (r, n - s, flipped v) signature of the same key: ECDSA malleability."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECPK1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpha(anvil_devnet: Devnet) -> Side:
    return _side(anvil_devnet.chain("alpha"))


@pytest.fixture(scope="module")
def beta(anvil_devnet: Devnet) -> Side:
    return _side(anvil_devnet.chain("beta"))


@pytest.fixture(scope="module")
def gamma(anvil_devnet: Devnet) -> Side:
    return _side(anvil_devnet.chain("gamma"))


@pytest.fixture(scope="module")
def relayer(alpha: Side, beta: Side) -> DevAccount:
    """Sends every delivery, to beta and back to alpha."""
    return _funded_account(alpha, beta)


@pytest.fixture(scope="module")
def wrapped(alpha: Side, beta: Side) -> Contract:
    """alpha's ITT, wrapped on beta."""
    return load_contract(beta.w3, "BridgedToken", alpha.chain.wrapped_tokens["beta"])


@pytest.fixture(scope="module")
def holder(alpha: Side, beta: Side) -> DevAccount:
    """Owns ITT on alpha and sends the module's transfers (and has gas on beta)."""
    account = _funded_account(alpha, beta)
    _send(alpha, account, [alpha.token.functions.mint(account.address, 100 * AMOUNT)])  # faucet
    return account


@pytest.fixture(scope="module")
def bridge_out(
    alpha: Side, beta: Side, relayer: DevAccount, holder: DevAccount
) -> Iterator[Callable[[], Bridged]]:
    """Locks AMOUNT of ITT on alpha for a fresh address on beta; returns the gateway message.

    At the end, anything not yet delivered (or returned) is delivered, so nothing stays in
    flight."""
    sent: list[Message] = []

    def bridge() -> Bridged:
        to = _fresh_address()
        approve = alpha.token.functions.approve(alpha.bridge.address, AMOUNT)
        out = alpha.bridge.functions.bridgeOut(alpha.token.address, beta.chain_id, to, AMOUNT)
        receipts = _send(alpha, holder, [approve]) + _send(alpha, holder, [out])
        assert [r["status"] for r in receipts] == [1, 1]
        message = _sent_message(alpha, receipts[1])
        assert (message.src_gateway, message.gas_limit) == (
            alpha.gateway.address,
            DEFAULT_GAS_LIMIT,
        )
        (out_log,) = _events(alpha.bridge, "BridgedOut", receipts[1])
        assert out_log["messageId"] == message.id and out_log["amount"] == AMOUNT
        sent.append(message)
        return Bridged(message, to)

    yield bridge
    leftover = [m for m in sent if not _delivered(beta, m)]
    if leftover:
        threshold = beta.gateway.functions.threshold().call()
        sigs = [_attest(beta, m, _ascending(VALIDATORS[:threshold])) for m in leftover]
        call = beta.gateway.functions.deliverBatch([m.as_tuple() for m in leftover], sigs)
        (receipt,) = _send(beta, relayer, [call])
        assert receipt["status"] == 1 and all(_delivered(beta, m) for m in leftover)


@pytest.fixture(scope="module")
def pending(bridge_out: Callable[[], Bridged]) -> Bridged:
    """The module's real message alpha -> beta; test_good_delivery_then_replays delivers it."""
    return bridge_out()


# -- 1. Python and the contract agree ------------------------------------------------------


def test_digest_and_message_id_match_the_contract(
    alpha: Side, beta: Side, gamma: Side, pending: Bridged
) -> None:
    real = pending.message
    ids = [real.id, bytes(32), b"\xff" * 32, secrets.token_bytes(32)]
    for side in (alpha, beta, gamma):
        gw = side.gateway.functions
        current = gw.epoch().call()
        assert bytes(gw.ATTESTATION_TYPEHASH().call()) == ATTESTATION_TYPEHASH
        _, name, version, chain_id, verifying, _, _ = gw.eip712Domain().call()
        assert (name, version, chain_id) == ("IslandsGateway", "1", side.chain_id)
        assert verifying == side.gateway.address
        for message_id in ids:
            for epoch in (0, 1, current, current + 1, 2**64 - 1):
                ours = attestation_digest(message_id, epoch, side.chain_id, side.gateway.address)
                assert ours == bytes(gw.attestationDigest(message_id, epoch).call())

    samples = [
        real,
        replace(real, payload=b""),
        replace(real, payload=b"\x01" * 31),
        replace(real, payload=b"\x02" * 33, nonce=2**64 - 1, dst_chain_id=2**64 - 1),
        replace(real, src_gateway=_fresh_address()),
        replace(real, gas_limit=2**64 - 1),
        Message(
            src_chain_id=1,
            src_gateway=_fresh_address().lower(),
            dst_chain_id=2,
            nonce=3,
            sender=DEPLOYER.address.lower(),
            recipient=beta.bridge.address,
            gas_limit=0,
            payload=b"x" * 100,
            version=255,
        ),
    ]
    for message in samples:
        assert message.id == bytes(beta.gateway.functions.messageId(message.as_tuple()).call())
    assert len({m.id for m in samples}) == len(samples)

    home, token, _, to, amount = abi_decode(PAYLOAD_TYPES, real.payload)
    assert (real.src_chain_id, real.dst_chain_id) == (alpha.chain_id, beta.chain_id)
    assert (real.sender, real.recipient) == (alpha.bridge.address, beta.bridge.address)
    assert (home, to_checksum_address(token), amount) == (
        alpha.chain_id,
        alpha.token.address,
        AMOUNT,
    )
    assert to_checksum_address(to) == pending.to


# -- 2. bad signatures are refused ---------------------------------------------------------


def _bad_deliveries(message: Message, alpha: Side, beta: Side) -> dict[str, Delivery]:
    """Attacks on beta's gateway by name: the message and signatures of each."""
    v = VALIDATORS
    epoch = beta.gateway.functions.epoch().call()
    good = _attest(beta, message, _ascending(v[:2]))
    home, token, sender, _, amount = abi_decode(PAYLOAD_TYPES, message.payload)
    payload = abi_encode(PAYLOAD_TYPES, [home, token, sender, sender, amount * 1000])
    return {
        "forged": (message, _attest(beta, message, _ascending([v[0], _new_account()]))),
        "too few": (message, _attest(beta, message, [v[0]])),
        "none": (message, []),
        "duplicate": (message, _attest(beta, message, [v[0], v[0]])),
        "descending": (message, list(reversed(good))),
        "other epoch": (message, _attest(beta, message, _ascending(v[:2]), epoch=epoch + 1)),
        "alpha's domain": (message, _attest(alpha, message, _ascending(v[:2]), epoch=epoch)),
        "tampered payload": (replace(message, payload=payload), good),
        "malleable": (message, [good[0], _high_s_twin(good[1])]),
        "short": (message, [good[0], good[1][:64]]),
    }


BAD_CASES = [
    ("forged", "UnknownSigner"),
    ("too few", "InsufficientSignatures"),
    ("none", "InsufficientSignatures"),
    ("duplicate", "SignersNotAscending"),
    ("descending", "SignersNotAscending"),
    ("other epoch", "UnknownSigner"),
    ("alpha's domain", "UnknownSigner"),
    ("tampered payload", "UnknownSigner"),
    ("malleable", "ECDSAInvalidSignatureS"),
    ("short", "InvalidSignatureLength"),
]


@pytest.mark.parametrize(("case", "error"), BAD_CASES, ids=[c for c, _ in BAD_CASES])
def test_bad_signatures_are_refused(
    case: str,
    error: str,
    alpha: Side,
    beta: Side,
    relayer: DevAccount,
    wrapped: Contract,
    pending: Bridged,
) -> None:
    message, sigs = _bad_deliveries(pending.message, alpha, beta)[case]
    gw = beta.gateway.functions
    assert not _delivered(beta, message)
    one = gw.deliver(message.as_tuple(), sigs)
    batch = gw.deliverBatch([message.as_tuple()], [sigs])
    assert _error_name(_revert_of(one, relayer.address)) == error
    assert _error_name(_revert_of(batch, relayer.address)) == error

    receipts = _send(beta, relayer, [one, batch], gas=FAILING_GAS)
    assert [r["status"] for r in receipts] == [0, 0]
    assert not _delivered(beta, message) and not _delivered(beta, pending.message)
    assert wrapped.functions.balanceOf(pending.to).call() == 0


# -- 3. a good delivery, then replays -------------------------------------------------------


def test_good_delivery_then_replays(
    beta: Side, relayer: DevAccount, wrapped: Contract, pending: Bridged
) -> None:
    message, gw = pending.message, beta.gateway.functions
    supply = wrapped.functions.totalSupply().call()
    assert wrapped.functions.balanceOf(pending.to).call() == 0
    sigs = _attest(beta, message, _ascending([VALIDATORS[0], VALIDATORS[2]]))  # 2 of 3

    (receipt,) = _send(beta, relayer, [gw.deliver(message.as_tuple(), sigs)])
    assert receipt["status"] == 1
    (done,) = _events(beta.gateway, "MessageDelivered", receipt)
    assert (done["id"], done["srcChainId"], done["nonce"]) == (
        message.id,
        message.src_chain_id,
        message.nonce,
    )
    assert _events(beta.gateway, "MessageFailed", receipt) == []
    assert _delivered(beta, message)
    assert wrapped.functions.balanceOf(pending.to).call() == AMOUNT
    assert wrapped.functions.totalSupply().call() == supply + AMOUNT

    replay = gw.deliver(message.as_tuple(), sigs)
    assert _revert_of(replay, relayer.address) == f"AlreadyDelivered(0x{message.id.hex()})"
    (failed,) = _send(beta, relayer, [replay], gas=FAILING_GAS)
    assert failed["status"] == 0

    (batch,) = _send(beta, relayer, [gw.deliverBatch([message.as_tuple()], [sigs])])
    assert batch["status"] == 1
    assert _events(beta.gateway, "MessageSkipped", batch) == [{"id": message.id}]
    assert _events(beta.gateway, "MessageDelivered", batch) == []
    assert _events(wrapped, "Transfer", batch) == []
    assert wrapped.functions.balanceOf(pending.to).call() == AMOUNT
    assert wrapped.functions.totalSupply().call() == supply + AMOUNT


# -- 4. a message for another chain ---------------------------------------------------------


def test_message_for_gamma_is_refused_on_beta(
    beta: Side, gamma: Side, relayer: DevAccount, pending: Bridged
) -> None:
    """The real message readdressed to gamma, with valid signatures for beta or for gamma."""
    for_gamma = replace(pending.message, dst_chain_id=gamma.chain_id)
    signers = _ascending(VALIDATORS[:2])
    gw = beta.gateway.functions
    for sigs in (_attest(beta, for_gamma, signers), _attest(gamma, for_gamma, signers)):
        one = gw.deliver(for_gamma.as_tuple(), sigs)
        batch = gw.deliverBatch([for_gamma.as_tuple()], [sigs])
        assert _revert_of(one, relayer.address) == "WrongDestination()"
        assert _revert_of(batch, relayer.address) == "WrongDestination()"
        receipts = _send(beta, relayer, [one, batch], gas=FAILING_GAS)
        assert [r["status"] for r in receipts] == [0, 0]
        assert not _delivered(beta, for_gamma)


# -- 5. the id names the source gateway ------------------------------------------------------


def test_the_same_message_from_another_gateway_has_another_id(alpha: Side, beta: Side) -> None:
    """Two gateways on one chain send the same payload from the same sender to the same
    recipient at the same nonce: only the source gateway differs, and so do the ids."""
    deployer = _funded_account(alpha)
    members = [v.address for v in VALIDATORS]
    ctor = load_contract(alpha.w3, "Gateway").constructor(deployer.address, members, 2)
    created = _send(alpha, deployer, [ctor, ctor])
    gateways = [load_contract(alpha.w3, "Gateway", r["contractAddress"]) for r in created]
    recipient = _fresh_address()
    messages = []
    for gateway in gateways:
        (receipt,) = _send(
            alpha, deployer, [gateway.functions.send(beta.chain_id, recipient, b"same")]
        )
        messages.append(_sent_message(replace(alpha, gateway=gateway), receipt))
    first, second = messages
    assert (first.src_gateway, second.src_gateway) == tuple(g.address for g in gateways)
    assert replace(first, src_gateway=second.src_gateway) == second
    assert first.id != second.id
    for gateway, message in zip(gateways, messages, strict=True):
        assert message.id == bytes(gateway.functions.messageId(message.as_tuple()).call())
    block = receipt["blockNumber"]
    (observed,) = _adapter(alpha).messages(gateways[1].address, block, block)
    assert observed.message == second


# -- 6. gas: what the sender names, exactly -----------------------------------------------------


def _send_message(alpha: Side, beta: Side, recipient: str, payload: bytes, gas: int) -> Message:
    """`Gateway.send` with a gas limit on alpha, to `recipient` on beta, from a fresh account."""
    call = alpha.gateway.functions.send(beta.chain_id, recipient, payload, gas)
    (receipt,) = _send(alpha, _funded_account(alpha), [call])
    return _sent_message(alpha, receipt)


@pytest.fixture(scope="module")
def looper(beta: Side) -> str:
    """A recipient on beta whose code loops until its gas is gone."""
    return _deploy_code(beta, _funded_account(beta), LOOP_CODE)


def test_gas_limit_out_of_range_is_refused(alpha: Side, beta: Side) -> None:
    sender = _funded_account(alpha).address
    send = alpha.gateway.functions.send
    assert alpha.gateway.functions.DEFAULT_GAS_LIMIT().call() == DEFAULT_GAS_LIMIT
    for bad in (0, 9_999, 10_000_001, 2**64 - 1):
        call = send(beta.chain_id, _fresh_address(), b"g", bad)
        assert _revert_of(call, sender) == f"GasLimitOutOfRange({bad})"
    for good in (10_000, 10_000_000):
        send(beta.chain_id, _fresh_address(), b"g", good).call({"from": sender})
    assert _send_message(alpha, beta, _fresh_address(), b"g", 123_456).gas_limit == 123_456


@pytest.mark.parametrize("gas_limit", [10_000, DEFAULT_GAS_LIMIT, 2_000_000])
def test_a_looping_recipient_costs_its_gas_limit_and_fails_alone(
    gas_limit: int, alpha: Side, beta: Side, relayer: DevAccount, looper: str
) -> None:
    """Issue 6, attack 1 and 8: a recipient that loops forever made every simulated delivery
    revert. Now it gets exactly its gas limit, fails with a reason, and the delivery costs
    the relayer that limit plus a bounded overhead."""
    message = _send_message(alpha, beta, looper, b"spin", gas_limit)
    receipt = _relay(beta, relayer, [message])
    (failed,) = _events(beta.gateway, "MessageFailed", receipt)
    assert failed["id"] == message.id
    assert decode_revert(failed["reason"]) == f"RecipientOutOfGas({gas_limit})"
    assert gas_limit < receipt["gasUsed"] < gas_limit + DELIVERY_OVERHEAD_BOUND
    assert not _delivered(beta, message)


def test_a_looping_recipient_does_not_stop_the_batch(
    alpha: Side,
    beta: Side,
    relayer: DevAccount,
    looper: str,
    wrapped: Contract,
    bridge_out: Callable[[], Bridged],
) -> None:
    loop = _send_message(alpha, beta, looper, b"spin", DEFAULT_GAS_LIMIT)
    transfer = bridge_out()
    receipt = _relay(beta, relayer, [loop, transfer.message])
    block, tx_hash = receipt["blockNumber"], receipt["transactionHash"].to_0x_hex()
    outcomes = _adapter(beta).delivery_outcomes(beta.gateway.address, block, block)
    ours = {o.message_id: o for o in outcomes if o.tx_hash == tx_hash}
    assert ours[loop.id].status is DeliveryStatus.FAILED
    assert ours[loop.id].reason == f"RecipientOutOfGas({DEFAULT_GAS_LIMIT})"
    assert ours[transfer.message.id].status is DeliveryStatus.DELIVERED
    assert wrapped.functions.balanceOf(transfer.to).call() == AMOUNT


def test_under_supplied_gas_reverts_instead_of_failing_the_message(
    beta: Side, relayer: DevAccount, wrapped: Contract, bridge_out: Callable[[], Bridged]
) -> None:
    """A relayer that gives too little gas cannot make a good message fail: the whole
    delivery reverts with InsufficientGas(), and the message is delivered later."""
    transfer = bridge_out()
    message = transfer.message
    call = beta.gateway.functions.deliver(message.as_tuple(), _signed(beta, message).signatures)
    short = message.gas_limit  # less than the gas limit plus the delivery's own cost
    assert _revert_of(call, relayer.address, gas=short) == "InsufficientGas()"
    (mined,) = _send(beta, relayer, [call], gas=short)
    assert mined["status"] == 0 and not _delivered(beta, message)
    assert wrapped.functions.balanceOf(transfer.to).call() == 0
    receipt = _relay(beta, relayer, [message])
    assert [e["id"] for e in _events(beta.gateway, "MessageDelivered", receipt)] == [message.id]
    assert wrapped.functions.balanceOf(transfer.to).call() == AMOUNT


# -- 7. consume: only the recipient ---------------------------------------------------------------


def test_only_the_recipient_consumes_a_message(
    alpha: Side, beta: Side, relayer: DevAccount
) -> None:
    recipient = _funded_account(beta)  # an account, so the test can act as the recipient
    message = _send_message(alpha, beta, recipient.address, b"mine", DEFAULT_GAS_LIMIT)
    signatures = list(_signed(beta, message).signatures)
    consume = beta.gateway.functions.consume(message.as_tuple(), signatures)
    for stranger in (relayer.address, DEPLOYER.address):
        assert _revert_of(consume, stranger) == f"NotRecipient({stranger})"
    too_few = beta.gateway.functions.consume(message.as_tuple(), signatures[:1])
    assert _revert_of(too_few, recipient.address) == "InsufficientSignatures()"

    (receipt,) = _send(beta, recipient, [consume])
    assert receipt["status"] == 1
    assert _events(beta.gateway, "MessageConsumed", receipt) == [
        {"id": message.id, "srcChainId": alpha.chain_id, "by": recipient.address}
    ]
    block = receipt["blockNumber"]
    outcomes = _adapter(beta).delivery_outcomes(beta.gateway.address, block, block)
    assert [o.status for o in outcomes if o.message_id == message.id] == [DeliveryStatus.CONSUMED]
    assert _delivered(beta, message)
    already = f"AlreadyDelivered(0x{message.id.hex()})"
    assert _revert_of(consume, recipient.address) == already
    deliver = beta.gateway.functions.deliver(message.as_tuple(), signatures)
    assert _revert_of(deliver, relayer.address) == already


# -- 8. owners act in two steps -------------------------------------------------------------------


def _unauthorized(account: str) -> str:
    return f"OwnableUnauthorizedAccount({account})"


@pytest.mark.parametrize("name", ["gateway", "bridge"])
def test_ownership_moves_in_two_steps(name: str, beta: Side) -> None:
    target: Contract = getattr(beta, name)
    fn = target.functions
    newcomer = _funded_account(beta)
    assert fn.owner().call() == DEPLOYER.address
    (started,) = _send(beta, DEPLOYER, [fn.transferOwnership(newcomer.address)])
    try:
        assert _events(target, "OwnershipTransferStarted", started) == [
            {"previousOwner": DEPLOYER.address, "newOwner": newcomer.address}
        ]
        # Nothing changes until the newcomer accepts: the owner keeps every power.
        assert fn.owner().call() == DEPLOYER.address
        assert fn.pendingOwner().call() == newcomer.address
        steal = fn.transferOwnership(newcomer.address)
        assert _revert_of(steal, newcomer.address) == _unauthorized(newcomer.address)
        stranger = _new_account().address
        assert _revert_of(fn.acceptOwnership(), stranger) == _unauthorized(stranger)
        fn.transferOwnership(DEPLOYER.address).call({"from": DEPLOYER.address})

        (accepted,) = _send(beta, newcomer, [fn.acceptOwnership()])
        assert accepted["status"] == 1
        assert fn.owner().call() == newcomer.address
        assert int(fn.pendingOwner().call(), 16) == 0
        back = fn.transferOwnership(DEPLOYER.address)
        assert _revert_of(back, DEPLOYER.address) == _unauthorized(DEPLOYER.address)
    finally:
        if fn.owner().call() == newcomer.address:
            _send(beta, newcomer, [fn.transferOwnership(DEPLOYER.address)])
            _send(beta, DEPLOYER, [fn.acceptOwnership()])
        else:
            _send(beta, DEPLOYER, [fn.transferOwnership(DEPLOYER.address), fn.acceptOwnership()])
    assert fn.owner().call() == DEPLOYER.address


# -- 9. the guardian's pause, and a failed transfer returned to its sender ------------------------


def _transact(side: Side, account: DevAccount, signed_tx: Any) -> TxReceipt:
    _adapter(side).send_raw(signed_tx.raw)
    receipt = _wait(side, signed_tx.tx_hash)
    assert receipt["status"] == 1
    return receipt


def _return_to_sender(beta: Side, transfer: SignedMessage, account: DevAccount) -> TxReceipt:
    """`TokenBridge.returnToSender` through the adapter (BridgeOperator): simulate, sign, send."""
    adapter, bridge = _adapter(beta), beta.bridge.address
    gas = adapter.simulate_return_to_sender(bridge, transfer, account.address)
    nonce = adapter.account_nonce(account.address, pending=True)
    signed = adapter.sign_return_to_sender(
        bridge, transfer, account.private_key, nonce, adapter.fee_quote(), gas
    )
    assert adapter.account_nonce(account.address, pending=True) == nonce  # nothing sent yet
    return _transact(beta, account, signed)


@contextmanager
def _guardian(beta: Side, guardian: DevAccount) -> Iterator[None]:
    """`guardian` is the bridge's guardian inside; afterwards the bridge runs and the devnet's
    deployer is guardian again."""
    bridge = beta.bridge.functions
    (receipt,) = _send(beta, DEPLOYER, [bridge.setGuardian(guardian.address)])
    assert _events(beta.bridge, "GuardianSet", receipt) == [
        {"previousGuardian": DEPLOYER.address, "newGuardian": guardian.address}
    ]
    try:
        yield
    finally:
        if bridge.paused().call():
            _send(beta, DEPLOYER, [bridge.unpause()])
        _send(beta, DEPLOYER, [bridge.setGuardian(DEPLOYER.address)])


def test_guardian_pause_then_the_sender_takes_the_transfer_back(
    alpha: Side,
    beta: Side,
    relayer: DevAccount,
    holder: DevAccount,
    wrapped: Contract,
    bridge_out: Callable[[], Bridged],
) -> None:
    """A transfer whose mint fails (the destination bridge is paused) is returned: the
    gateway marks it consumed, and the source releases the tokens to their sender."""
    guardian, stranger = _funded_account(beta), _funded_account(beta)
    bridge, adapter = beta.bridge.functions, _adapter(beta)
    balance = alpha.token.functions.balanceOf
    before = balance(holder.address).call()
    with _guardian(beta, guardian):
        assert bridge.guardian().call() == guardian.address
        assert (
            _revert_of(bridge.pause(), stranger.address)
            == f"NotGuardianOrOwner({stranger.address})"
        )
        (paused,) = _send(beta, guardian, [bridge.pause()])
        assert _events(beta.bridge, "Paused", paused) == [{"account": guardian.address}]
        assert adapter.bridge_paused(beta.bridge.address) is True
        out = bridge.bridgeOut(wrapped.address, alpha.chain_id, holder.address, 1)
        assert _revert_of(out, holder.address) == "EnforcedPause()"
        limit = RateLimit(
            remote_chain_id=alpha.chain_id,
            token=wrapped.address,
            outbound=True,
            capacity=1,
            refill_per_second=1,
        )
        assert adapter.simulate_set_rate_limit(beta.bridge.address, limit, guardian.address) > 0

        transfer = bridge_out()
        assert balance(holder.address).call() == before - AMOUNT
        receipt = _relay(beta, relayer, [transfer.message])
        (failed,) = _events(beta.gateway, "MessageFailed", receipt)
        assert (failed["id"], decode_revert(failed["reason"])) == (
            transfer.message.id,
            "EnforcedPause()",
        )
        assert not _delivered(beta, transfer.message)
        signed = _signed(beta, transfer.message)
        with pytest.raises(SimulationError) as raised:  # a pause stops returns too
            adapter.simulate_return_to_sender(beta.bridge.address, signed, holder.address)
        assert raised.value.reason == "EnforcedPause()"
        _send(beta, guardian, [bridge.unpause()])
        assert adapter.bridge_paused(beta.bridge.address) is False

    with pytest.raises(SimulationError) as raised:
        adapter.simulate_return_to_sender(beta.bridge.address, signed, stranger.address)
    assert raised.value.reason == f"NotAllowedToReturn({stranger.address})"
    forged = SignedMessage(transfer.message, signed.signatures[:1])
    with pytest.raises(SimulationError) as raised:
        adapter.simulate_return_to_sender(beta.bridge.address, forged, holder.address)
    assert raised.value.reason == "InsufficientSignatures()"

    receipt = _return_to_sender(beta, signed, holder)
    original = transfer.message.id
    assert _events(beta.gateway, "MessageConsumed", receipt) == [
        {"id": original, "srcChainId": alpha.chain_id, "by": beta.bridge.address}
    ]
    back = _sent_message(beta, receipt)
    assert _events(beta.bridge, "TransferReturned", receipt) == [
        {"originalId": original, "returnId": back.id, "to": holder.address, "amount": AMOUNT}
    ]
    assert (back.sender, back.recipient, back.dst_chain_id) == (
        beta.bridge.address,
        alpha.bridge.address,
        alpha.chain_id,
    )
    home, token, sender, to, amount = abi_decode(PAYLOAD_TYPES, back.payload)
    assert (home, to_checksum_address(token), amount) == (
        alpha.chain_id,
        alpha.token.address,
        AMOUNT,
    )
    assert (to_checksum_address(sender), to_checksum_address(to)) == (transfer.to, holder.address)
    block = receipt["blockNumber"]
    outcomes = adapter.delivery_outcomes(beta.gateway.address, block, block)
    assert [o.status for o in outcomes if o.message_id == original] == [DeliveryStatus.CONSUMED]
    assert _delivered(beta, transfer.message)
    with pytest.raises(SimulationError) as raised:  # once only
        adapter.simulate_return_to_sender(beta.bridge.address, signed, holder.address)
    assert raised.value.reason == f"AlreadyDelivered(0x{original.hex()})"
    assert wrapped.functions.balanceOf(transfer.to).call() == 0

    home_receipt = _relay(alpha, relayer, [back])
    assert [e["id"] for e in _events(alpha.gateway, "MessageDelivered", home_receipt)] == [back.id]
    assert balance(holder.address).call() == before


# -- 10. rate limits ------------------------------------------------------------------------------


def _set_limit(side: Side, limit: RateLimit) -> TxReceipt:
    """`setRateLimit` through the adapter (BridgeOperator), as the devnet's guardian."""
    adapter, bridge = _adapter(side), side.bridge.address
    gas = adapter.simulate_set_rate_limit(bridge, limit, DEPLOYER.address)
    nonce = adapter.account_nonce(DEPLOYER.address, pending=True)
    signed = adapter.sign_set_rate_limit(
        bridge, limit, DEPLOYER.private_key, nonce, adapter.fee_quote(), gas
    )
    return _transact(side, DEPLOYER, signed)


def _unlimited(limit: RateLimit) -> RateLimit:
    return replace(limit, capacity=0, refill_per_second=0)


def _rate_limited(reason: str, limit: RateLimit, amount: int) -> int:
    """The `available` of a RateLimited(...) reason for `limit` and `amount`."""
    head = f"RateLimited({limit.remote_chain_id}, {limit.token}, {limit.outbound}, "
    assert reason.startswith(head) and reason.endswith(f", {amount})"), reason
    return int(reason.removeprefix(head).split(",")[0])


def test_outbound_rate_limit_refuses_then_refills(
    alpha: Side, beta: Side, holder: DevAccount, bridge_out: Callable[[], Bridged]
) -> None:
    adapter, bridge = _adapter(alpha), alpha.bridge.address
    limit = RateLimit(
        remote_chain_id=beta.chain_id,
        token=alpha.token.address,
        outbound=True,
        capacity=AMOUNT * 3 // 2,
        refill_per_second=AMOUNT // 1_000,
    )
    stranger = _new_account().address
    with pytest.raises(SimulationError) as raised:
        adapter.simulate_set_rate_limit(bridge, limit, stranger)
    assert raised.value.reason == f"NotGuardianOrOwner({stranger})"
    receipt = _set_limit(alpha, limit)
    try:
        assert _events(alpha.bridge, "RateLimitSet", receipt) == [
            {
                "remoteChainId": beta.chain_id,
                "token": alpha.token.address,
                "outbound": True,
                "capacity": limit.capacity,
                "refillPerSecond": limit.refill_per_second,
            }
        ]
        state = adapter.rate_limit(bridge, beta.chain_id, alpha.token.address, True)
        assert state.limit == limit and state.available == limit.capacity  # starts full
        bridge_out()

        approve = alpha.token.functions.approve(bridge, AMOUNT)
        _send(alpha, holder, [approve])
        out = alpha.bridge.functions.bridgeOut(
            alpha.token.address, beta.chain_id, holder.address, AMOUNT
        )
        available = _rate_limited(_revert_of(out, holder.address), limit, AMOUNT)
        assert limit.capacity - AMOUNT <= available < AMOUNT

        _advance_time(alpha, 1_000)  # 1,000 s refill a whole AMOUNT
        state = adapter.rate_limit(bridge, beta.chain_id, alpha.token.address, True)
        assert state.available == limit.capacity
        bridge_out()
    finally:
        _set_limit(alpha, _unlimited(limit))
    state = adapter.rate_limit(bridge, beta.chain_id, alpha.token.address, True)
    assert not state.limit.limited and state.available == NO_RATE_LIMIT


def test_inbound_rate_limit_fails_the_delivery_until_the_bucket_refills(
    alpha: Side,
    beta: Side,
    relayer: DevAccount,
    wrapped: Contract,
    bridge_out: Callable[[], Bridged],
) -> None:
    """An inbound transfer over the limit fails with RateLimited (the hub waits on it), and
    the same message is delivered once the bucket has refilled."""
    limit = RateLimit(
        remote_chain_id=alpha.chain_id,
        token=wrapped.address,
        outbound=False,
        capacity=AMOUNT,
        refill_per_second=AMOUNT // 1_000,
    )
    first, second = bridge_out(), bridge_out()
    _set_limit(beta, limit)
    try:
        receipt = _relay(beta, relayer, [first.message, second.message])
        block, tx_hash = receipt["blockNumber"], receipt["transactionHash"].to_0x_hex()
        outcomes = _adapter(beta).delivery_outcomes(beta.gateway.address, block, block)
        ours = {o.message_id: o for o in outcomes if o.tx_hash == tx_hash}
        assert ours[first.message.id].status is DeliveryStatus.DELIVERED
        assert ours[second.message.id].status is DeliveryStatus.FAILED
        assert _rate_limited(ours[second.message.id].reason, limit, AMOUNT) < AMOUNT
        assert wrapped.functions.balanceOf(second.to).call() == 0

        _advance_time(beta, 1_000)
        receipt = _relay(beta, relayer, [second.message])
        assert [e["id"] for e in _events(beta.gateway, "MessageDelivered", receipt)] == [
            second.message.id
        ]
        assert wrapped.functions.balanceOf(second.to).call() == AMOUNT
    finally:
        _set_limit(beta, _unlimited(limit))


# -- 11. a new validator set (last: it changes beta's epoch, and restores the set) -----------


def _set_validators(beta: Side, validators: Sequence[str], threshold: int) -> TxReceipt:
    call = beta.gateway.functions.setValidators(list(validators), threshold)
    (receipt,) = _send(beta, DEPLOYER, [call])
    assert receipt["status"] == 1
    return receipt


def test_old_epoch_signatures_die_with_a_new_set(
    beta: Side,
    relayer: DevAccount,
    wrapped: Contract,
    bridge_out: Callable[[], Bridged],
) -> None:
    gw = beta.gateway.functions
    original = [v.address for v in VALIDATORS]
    assert gw.getValidators().call() == original and gw.threshold().call() == 2
    assert gw.owner().call() == DEPLOYER.address
    old_epoch = gw.epoch().call()
    fresh = bridge_out()
    message = fresh.message
    kept = _ascending(VALIDATORS[1:])  # still validators after the change
    old_sigs = _attest(beta, message, kept)
    newcomer = _new_account()
    try:
        receipt = _set_validators(beta, [*original[1:], newcomer.address], 2)
        (changed,) = _events(beta.gateway, "ValidatorSetChanged", receipt)
        assert changed["epoch"] == old_epoch + 1 == gw.epoch().call()
        assert not gw.isValidator(original[0]).call() and gw.isValidator(newcomer.address).call()

        removed = _attest(beta, message, _ascending(VALIDATORS[:2]))  # VALIDATORS[0] is out
        for sigs in (old_sigs, removed):
            call = gw.deliver(message.as_tuple(), sigs)
            assert _revert_of(call, relayer.address) == "UnknownSigner()"
            (failed,) = _send(beta, relayer, [call], gas=FAILING_GAS)
            assert failed["status"] == 0 and not _delivered(beta, message)
        assert wrapped.functions.balanceOf(fresh.to).call() == 0

        new_sigs = _attest(beta, message, _ascending([VALIDATORS[2], newcomer]))
        (ok,) = _send(beta, relayer, [gw.deliver(message.as_tuple(), new_sigs)])
        assert ok["status"] == 1 and _delivered(beta, message)
        assert wrapped.functions.balanceOf(fresh.to).call() == AMOUNT
    finally:
        _set_validators(beta, original, 2)
    assert gw.getValidators().call() == original and gw.threshold().call() == 2
    assert gw.epoch().call() == old_epoch + 2

    # The same set as at the start, but its epoch-old attestations stay dead. (eth_call only:
    # a message no one sent, to an address with no code.)
    phantom = replace(message, nonce=2**63, recipient=_fresh_address())
    stale = gw.deliver(phantom.as_tuple(), _attest(beta, phantom, kept, epoch=old_epoch))
    assert _revert_of(stale, relayer.address) == "UnknownSigner()"
    gw.deliver(phantom.as_tuple(), _attest(beta, phantom, kept)).call({"from": relayer.address})
