"""The Gateway's security properties, checked on the deployed contracts of the devnet.

What an auditor verifies on the chain itself: Python computes the same id and EIP-712 digest
as the contract; a delivery with bad signatures (forged, too few, duplicated, out of order,
for another epoch or another gateway, over a tampered message, malleable) reverts and
leaves nothing delivered; a good one mints exactly once; a message for another chain is
refused; a validator-set change kills the attestations of the old epoch.

Every transfer here goes through the bridges (ITT locked on alpha, minted on beta) and is
delivered before the module ends, so the asset stays balanced for the tests that check it.
Transactions come from fresh accounts, so no other test's nonces are touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
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
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt

from adapters.base import Message
from adapters.evm.contracts import decode_revert
from adapters.evm.devnet import DEPLOYER, VALIDATORS, DevAccount, Devnet, DevnetChain, connect
from adapters.evm.devnet import contract as load_contract
from hub.domain.attestation import ATTESTATION_TYPEHASH, attestation_digest, sign_digest

pytestmark = pytest.mark.integration

AMOUNT = 7 * 10**15  # 0.007 ITT per transfer
FAILING_GAS = 1_000_000  # explicit, so a reverting delivery is mined (status 0), not refused
FUNDS = 10**20
PAYLOAD_TYPES = ["uint64", "address", "address", "address", "uint256"]

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
    side: Side, account: DevAccount, calls: Sequence[ContractFunction], gas: int | None = None
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


def _revert_of(call: ContractFunction, sender: str) -> str:
    """The decoded revert of `call` simulated with eth_call, e.g. "UnknownSigner()"."""
    try:
        call.call({"from": sender})
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
def relayer(beta: Side) -> DevAccount:
    """Sends every delivery to beta."""
    return _funded_account(beta)


@pytest.fixture(scope="module")
def wrapped(alpha: Side, beta: Side) -> Contract:
    """alpha's ITT, wrapped on beta."""
    return load_contract(beta.w3, "BridgedToken", alpha.chain.wrapped_tokens["beta"])


@pytest.fixture(scope="module")
def bridge_out(alpha: Side, beta: Side, relayer: DevAccount) -> Iterator[Callable[[], Bridged]]:
    """Locks AMOUNT of ITT on alpha for a fresh address on beta; returns the gateway message.

    At the end, anything not yet delivered is delivered, so nothing stays in flight."""
    holder = _funded_account(alpha)
    _send(alpha, holder, [alpha.token.functions.mint(holder.address, 100 * AMOUNT)])  # a faucet
    sent: list[Message] = []

    def bridge() -> Bridged:
        to = _fresh_address()
        approve = alpha.token.functions.approve(alpha.bridge.address, AMOUNT)
        out = alpha.bridge.functions.bridgeOut(alpha.token.address, beta.chain_id, to, AMOUNT)
        receipts = _send(alpha, holder, [approve]) + _send(alpha, holder, [out])
        assert [r["status"] for r in receipts] == [1, 1]
        (log,) = _events(alpha.gateway, "MessageSent", receipts[1])
        message = Message(
            src_chain_id=alpha.chain_id,
            dst_chain_id=log["dstChainId"],
            nonce=log["nonce"],
            sender=log["sender"],
            recipient=log["recipient"],
            payload=bytes(log["payload"]),
        )
        assert message.id == log["id"]
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
        Message(1, 2, 3, DEPLOYER.address.lower(), beta.bridge.address, b"x" * 100, version=255),
    ]
    for message in samples:
        assert message.id == bytes(beta.gateway.functions.messageId(message.as_tuple()).call())

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


# -- 5. a new validator set (last: it changes beta's epoch, and restores the set) -----------


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
