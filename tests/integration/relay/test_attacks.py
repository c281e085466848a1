"""Issue 6's attacks, each tried for real against the distributed stack (API, Celery relay
worker, three validator workers, beat, Postgres, Redis, three anvil chains): one stranger,
one validator or one hub key must not halt, forge or drain.

Each test leaves the stack as it found it (other modules share it)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from adapters.base import Message as WireMessage
from adapters.evm.contracts import load_artifact
from adapters.evm.devnet import contract as devnet_contract
from adapters.evm.devnet import deploy_contracts
from adapters.evm.nodes import start_anvil
from tests.conftest import ADMIN_TOKEN
from tests.fixtures.chains import free_port_block
from tests.integration.relay.chain import (
    Sender,
    balance,
    bridge_out,
    contract,
    rpc,
    token_of,
)
from tests.integration.relay.stack import Stack, wait_for
from tests.integration.rpcproxy import RpcProxy

pytestmark = pytest.mark.integration
Chains = dict[str, dict[str, Any]]
ITT = 10**18
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A contract whose every call loops until its gas is gone: JUMPDEST PUSH1 0 JUMP.
LOOP_FOREVER = "0x5b600056"


def user(stack: Stack, chain: dict[str, Any]) -> Sender:
    return Sender(chain, stack.key("user"))


def message(stack: Stack, message_id: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{stack.api}/v1/messages/{message_id}", timeout=30)
    return None if answer.status_code == 404 else dict(answer.json())


def state_of(stack: Stack, message_id: str) -> str | None:
    found = message(stack, message_id)
    return None if found is None else str(found["state"])


def gateway_send(
    sender: Sender, src: dict[str, Any], dst_chain_id: int, to: str, data: bytes
) -> str:
    """`Gateway.send(dst, recipient, payload)` straight from an account; the message id."""
    gateway = contract(src, "Gateway", src["gateway"])
    send = gateway.get_function_by_signature("send(uint64,address,bytes)")
    receipt = sender.wait(sender.send(send(dst_chain_id, to, data)))
    sent = gateway.events.MessageSent().process_receipt(receipt)[0]
    return "0x" + bytes(sent["args"]["id"]).hex()


def transferred(stack: Stack, tx_hash: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> Any:
        found = stack.get("/v1/transfers", src_tx_hash=tx_hash)
        return found[0] if found and found[0]["state"] == "delivered" else None

    return dict(wait_for(f"transfer {tx_hash} delivered", check, timeout))


def test_1_a_looping_recipient_halts_nothing(stack: Stack, chains: Chains) -> None:
    """Anyone sends to a recipient whose handler loops forever: that message is set aside as
    failed with its reason, and a transfer sent right after it is delivered."""
    alpha, beta = chains["alpha"], chains["beta"]
    looper = to_checksum_address("0x" + keccak(text="looper")[:20].hex())
    rpc(beta, "anvil_setCode", looper, LOOP_FOREVER)
    attacker, honest = Sender(alpha, stack.key("spare", 0)), user(stack, alpha)
    looping = gateway_send(attacker, alpha, beta["chain_id"], looper, b"spin")
    who = honest.address
    before = balance(stack.doc, beta, who)
    tx = bridge_out(honest, stack.doc, beta, who, 5 * ITT)
    honest.wait(tx)
    transferred(stack, tx, timeout=60)
    assert balance(stack.doc, beta, who) == before + 5 * ITT
    failed = wait_for("the looping message failed", lambda: state_of(stack, looping) == "failed")
    assert failed
    shown = message(stack, looping)
    assert shown is not None and shown["last_error"] and shown["attempts"] >= 1


class Forger:
    """A hostile RPC provider for alpha: it forwards everything to the real node, and adds a
    forged `MessageSent` log (and a receipt for its made-up transaction) at one block."""

    def __init__(self, proxy: RpcProxy, gateway: str, forged: WireMessage, block: int) -> None:
        self.proxy, self.gateway, self.forged, self.block = proxy, gateway.lower(), forged, block
        self.tx_hash = "0x" + keccak(text="forged tx").hex()
        proxy.rewrites.append(self.rewrite)

    def log(self) -> dict[str, Any]:
        event = next(
            e
            for e in load_artifact("Gateway").abi
            if e.get("type") == "event" and e["name"] == "MessageSent"
        )
        fields = _event_fields(self.forged)
        types = [i["type"] for i in event["inputs"] if not i["indexed"]]
        values = [fields[i["name"]] for i in event["inputs"] if not i["indexed"]]
        signature = f"MessageSent({','.join(i['type'] for i in event['inputs'])})"
        topics = [
            "0x" + keccak(text=signature).hex(),
            "0x" + self.forged.id.hex(),
            "0x" + self.forged.dst_chain_id.to_bytes(32, "big").hex(),
            "0x" + bytes.fromhex(self.forged.sender[2:]).rjust(32, b"\0").hex(),
        ]
        block_hash = self.proxy.node("eth_getBlockByNumber", hex(self.block), False)["hash"]
        return {
            "address": self.gateway,
            "topics": topics,
            "data": "0x" + abi_encode(types, values).hex(),
            "blockNumber": hex(self.block),
            "blockHash": block_hash,
            "transactionHash": self.tx_hash,
            "transactionIndex": "0x0",
            "logIndex": "0x0",
            "removed": False,
        }

    def rewrite(self, call: dict[str, Any], result: Any) -> Any:
        method, params = call.get("method"), call.get("params") or []
        if method == "eth_getLogs" and self._covers(params[0]):
            return [*result, self.log()]
        if method == "eth_getTransactionReceipt" and params and params[0] == self.tx_hash:
            log = self.log()
            return {
                "transactionHash": self.tx_hash,
                "transactionIndex": "0x0",
                "blockHash": log["blockHash"],
                "blockNumber": log["blockNumber"],
                "from": self.forged.sender,
                "to": self.gateway,
                "cumulativeGasUsed": "0x5208",
                "gasUsed": "0x5208",
                "effectiveGasPrice": "0x1",
                "contractAddress": None,
                "logs": [log],
                "logsBloom": "0x" + "00" * 256,
                "status": "0x1",
                "type": "0x2",
            }
        return result

    def _covers(self, flt: dict[str, Any]) -> bool:
        address = flt.get("address")
        addresses = address if isinstance(address, list) else [address]
        if self.gateway not in [str(a).lower() for a in addresses if a]:
            return False
        wanted = (flt.get("topics") or [None])[0]
        topic = self.log()["topics"][0]
        if wanted is not None and topic not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
        low, high = int(flt.get("fromBlock", "0x0"), 16), int(flt.get("toBlock", "0x0"), 16)
        return low <= self.block <= high


def _event_fields(m: WireMessage) -> dict[str, Any]:
    fields = {
        "id": m.id,
        "dstChainId": m.dst_chain_id,
        "sender": m.sender,
        "nonce": m.nonce,
        "recipient": m.recipient,
        "payload": m.payload,
    }
    if hasattr(m, "gas_limit"):
        fields["gasLimit"] = m.gas_limit
    return fields


def _wire(**fields: Any) -> WireMessage:
    """A message of this build's wire format (fields it does not have are left out)."""
    known = {f.name for f in dataclasses.fields(WireMessage)}
    return WireMessage(**{k: v for k, v in fields.items() if k in known})


@pytest.fixture
def unregistered_wrapped(stack: Stack, chains: Chains) -> tuple[str, str]:
    """A token of alpha with a wrapped copy on beta that the hub does not track as an asset."""
    alpha, beta = chains["alpha"], chains["beta"]
    deployer = Sender(alpha, stack.key("deployer"))
    token = devnet_contract(deployer.web3, "TestToken")
    receipt = deployer.wait(
        deployer.send(token.constructor("Side Token", "SIDE", 10**24), gas=3_000_000)
    )
    side = str(receipt["contractAddress"])
    owner = Sender(beta, stack.key("deployer"))
    bridge = contract(beta, "TokenBridge", beta["bridge"])
    owner.wait(
        owner.send(
            bridge.functions.createWrapped(alpha["chain_id"], side, "wSIDE", "wSIDE", 18),
            gas=3_000_000,
        )
    )
    return str(bridge.functions.wrappedToken(alpha["chain_id"], side).call()), side


@pytest.fixture
def forging_alpha(stack: Stack, chains: Chains) -> Iterator[RpcProxy]:
    """Alpha's registered RPC URL pointed by a hub admin at a hostile provider; put back after."""
    alpha = chains["alpha"]
    with RpcProxy(alpha["rpc_url"]) as proxy:
        answer = httpx.patch(
            f"{stack.api}/v1/chains/alpha",
            json={"rpc_urls": [proxy.url]},
            headers=ADMIN,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        try:
            yield proxy
        finally:
            back = httpx.patch(
                f"{stack.api}/v1/chains/alpha",
                json={"rpc_urls": [alpha["rpc_url"]]},
                headers=ADMIN,
                timeout=30,
            )
            assert back.status_code == 200, back.text


def test_3_one_hub_admin_key_cannot_mint(
    stack: Stack, chains: Chains, forging_alpha: RpcProxy, unregistered_wrapped: tuple[str, str]
) -> None:
    """The hub scans alpha through a provider that forges a MessageSent from alpha's bridge
    minting 1,000,000 tokens on beta. Validators read alpha through their own endpoints: none
    signs it, and nothing is minted."""
    alpha, beta = chains["alpha"], chains["beta"]
    wrapped, side = unregistered_wrapped
    attacker = to_checksum_address("0x" + keccak(text="attacker")[:20].hex())
    payload = abi_encode(
        ["uint64", "address", "address", "address", "uint256"],
        [alpha["chain_id"], side, attacker, attacker, 10**24],
    )
    forged = _wire(
        src_chain_id=alpha["chain_id"],
        src_gateway=alpha["gateway"],
        dst_chain_id=beta["chain_id"],
        nonce=10**9,
        sender=alpha["bridge"],
        recipient=beta["bridge"],
        gas_limit=200_000,
        payload=payload,
    )
    head = int(rpc(alpha, "eth_blockNumber"), 16)
    Forger(forging_alpha, alpha["gateway"], forged, head + 3)
    forged_id = "0x" + forged.id.hex()
    wait_for("the forged message observed", lambda: message(stack, forged_id), timeout=30)
    wait_for("it final", lambda: state_of(stack, forged_id) != "observed", timeout=30)

    def refused_by_all() -> Any:
        found = message(stack, forged_id)
        return found if found and len(found["refusals"]) == 3 else None

    shown = wait_for("every validator to refuse it", refused_by_all, timeout=30)
    assert all("source transaction missing" in r["reason"] for r in shown["refusals"])
    time.sleep(3)
    shown = message(stack, forged_id)
    assert shown is not None and shown["state"] == "finalized" and shown["attestations"] == []
    minted = contract(beta, "BridgedToken", wrapped).functions.balanceOf(attacker).call()
    assert minted == 0


def test_4_a_donation_to_the_bridge_stops_nothing(stack: Stack, chains: Chains) -> None:
    """One wei of the home token sent straight to the bridge is a surplus: an alert, no pause;
    transfers go on."""
    alpha, beta = chains["alpha"], chains["beta"]
    donor = user(stack, alpha)
    token = contract(alpha, "TestToken", token_of(stack.doc, alpha))
    donor.wait(donor.send(token.functions.transfer(alpha["bridge"], 1)))

    def surplus_alert() -> Any:
        return [a for a in stack.get("/v1/alerts") if a["kind"] == "supply_surplus"]

    wait_for("a surplus alert", surplus_alert, timeout=30)
    asset = stack.get("/v1/assets/ITT")
    assert asset["status"] == "active" and asset["supply"]["surplus"] == "1"
    assert all(r["status"] == "active" for r in stack.get("/v1/routes"))
    tx = bridge_out(donor, stack.doc, beta, donor.address, 2 * ITT)
    donor.wait(tx)
    transferred(stack, tx)
    assert stack.get("/v1/assets/ITT")["status"] == "active"


def _patch_route(stack: Stack, src: str, dst: str, paused: bool) -> None:
    route = next(r for r in stack.get("/v1/routes") if (r["src"], r["dst"]) == (src, dst))
    answer = httpx.patch(
        f"{stack.api}/v1/routes/{route['id']}",
        json={"paused": paused, "reason": "attack test"},
        headers=ADMIN,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_5_a_pause_is_honoured_by_validators(stack: Stack, chains: Chains) -> None:
    """While alpha -> gamma is paused, validators sign nothing for it and the API publishes no
    signature anyone could deliver with; resumed, the message goes through."""
    alpha, gamma = chains["alpha"], chains["gamma"]
    _patch_route(stack, "alpha", "gamma", paused=True)
    try:
        sender = user(stack, alpha)
        held = gateway_send(sender, alpha, gamma["chain_id"], gamma["inbox"], b"while paused")
        wait_for("the message final", lambda: state_of(stack, held) == "finalized", timeout=30)
        time.sleep(4)  # ten validator ticks
        shown = message(stack, held)
        assert shown is not None and shown["state"] == "finalized"
        assert shown["attestations"] == [] and "paused" in (shown["paused"] or "")
    finally:
        _patch_route(stack, "alpha", "gamma", paused=False)
    wait_for("delivered once resumed", lambda: state_of(stack, held) == "delivered", timeout=60)


@pytest.fixture
def retired_delta(stack: Stack, tmp_path: Any) -> Iterator[dict[str, Any]]:
    """A fourth chain joined, scanned, then retired."""
    port = free_port_block(1)
    with start_anvil(port, 31_777, block_time=0.25, state_dir=tmp_path) as node:
        deployed = deploy_contracts(
            node.rpc_url, stack.key("deployer"), stack.doc["validators"]["addresses"], 2
        )
        body = {
            "name": "delta",
            "chain_id": 31_777,
            "rpc_urls": [node.rpc_url],
            "finality": 2,
            "gateway_address": deployed.gateway,
            "bridge_address": deployed.bridge,
        }
        answer = httpx.post(f"{stack.api}/v1/chains", json=body, headers=ADMIN, timeout=30)
        assert answer.status_code == 201, answer.text
        answer = httpx.post(
            f"{stack.api}/v1/routes", json={"src": "alpha", "dst": "delta"}, headers=ADMIN
        )
        assert answer.status_code == 201, answer.text
        wait_for(
            "delta scanned",
            lambda: stack.get("/v1/chains/delta")["relay"]["validator_epoch"],
            timeout=30,
        )
        retired = httpx.delete(f"{stack.api}/v1/chains/delta", headers=ADMIN, timeout=30)
        assert retired.status_code == 200, retired.text
        yield body


def test_7_sends_to_a_retired_chain_hide_nothing(
    stack: Stack, chains: Chains, retired_delta: dict[str, Any]
) -> None:
    """200 messages to a retired chain are rejected (with the reason); they never fill the
    validators' window, and a transfer sent after them is delivered."""
    alpha, beta = chains["alpha"], chains["beta"]
    spammer = user(stack, alpha)
    gateway = contract(alpha, "Gateway", alpha["gateway"])
    send = gateway.get_function_by_signature("send(uint64,address,bytes)")
    hashes = [
        spammer.send(send(retired_delta["chain_id"], alpha["inbox"], b"%d" % i)) for i in range(200)
    ]
    spammer.wait(hashes[-1])
    tx = bridge_out(spammer, stack.doc, beta, spammer.address, ITT)
    spammer.wait(tx)
    transferred(stack, tx, timeout=90)

    def all_rejected() -> Any:
        page = stack.get("/v1/messages", dst=str(retired_delta["chain_id"]), limit=500)
        states = {m["state"] for m in page["items"]}
        return page if len(page["items"]) == 200 and states == {"rejected"} else None

    page = wait_for("the 200 rejected", all_rejected, timeout=60)
    assert all("retired" in (m["last_error"] or "") for m in page["items"])
