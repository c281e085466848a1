"""What operators do with the bridges, through the hub, on the distributed stack: gas caps per
route (issue 6, attack 8), a failed transfer retried once its cause is fixed or returned to
its sender, and rate limits applied on-chain by the guardian stage (a transfer over the limit
waits for the bucket).

Each test leaves the stack as it found it (other modules share it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

from adapters.evm.contracts import decode_revert
from adapters.evm.devnet import contract as devnet_contract
from tests.conftest import ADMIN_TOKEN
from tests.integration.helpers import islands
from tests.integration.relay.chain import Sender, bridge_out, contract, rpc, token_of
from tests.integration.relay.stack import Stack, wait_for

pytestmark = pytest.mark.integration
Chains = dict[str, dict[str, Any]]
ITT = 10**18
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LOOP_FOREVER = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP


def message(stack: Stack, message_id: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{stack.api}/v1/messages/{message_id}", timeout=30)
    return None if answer.status_code == 404 else dict(answer.json())


def state_of(stack: Stack, message_id: str) -> str | None:
    found = message(stack, message_id)
    return None if found is None else str(found["state"])


def route_id(stack: Stack, src: str, dst: str) -> int:
    return int(next(r["id"] for r in stack.get("/v1/routes") if (r["src"], r["dst"]) == (src, dst)))


def sent_id(src: dict[str, Any], receipt: Any) -> str:
    gateway = contract(src, "Gateway", src["gateway"])
    return (
        "0x" + bytes(gateway.events.MessageSent().process_receipt(receipt)[0]["args"]["id"]).hex()
    )


@pytest.fixture(scope="module")
def operator(stack: Stack) -> dict[str, str]:
    key = islands("keys", "create", "--role", "operator", database_url=stack.db_url).stdout.strip()
    return {"Authorization": f"Bearer {key}"}


def test_8_a_message_over_its_routes_gas_cap_is_rejected(stack: Stack, chains: Chains) -> None:
    """A message asking its recipient be given 5,000,000 gas, on a route capped at 500,000:
    rejected with the reason, never signed, never delivered (the relayer pays nothing)."""
    alpha, beta = chains["alpha"], chains["beta"]
    looper = "0x2020202020202020202020202020202020202020"
    rpc(beta, "anvil_setCode", looper, LOOP_FOREVER)
    sender = Sender(alpha, stack.key("spare", 1))
    gateway = contract(alpha, "Gateway", alpha["gateway"])
    send = gateway.get_function_by_signature("send(uint64,address,bytes,uint64)")
    receipt = sender.wait(sender.send(send(beta["chain_id"], looper, b"burn", 5_000_000)))
    heavy = sent_id(alpha, receipt)
    wait_for("the message rejected", lambda: state_of(stack, heavy) == "rejected", timeout=30)
    shown = message(stack, heavy)
    assert shown is not None and shown["gas_limit"] == 5_000_000
    assert "route allows at most 500000" in shown["last_error"]
    time.sleep(2)
    shown = message(stack, heavy)
    assert shown is not None and shown["attestations"] == [] and shown["dst_tx_hash"] is None
    retried = httpx.post(f"{stack.api}/v1/messages/{heavy}/retry", headers=ADMIN, timeout=30)
    assert retried.status_code == 409 and "max_gas" in retried.json()["error"]["message"]


def test_8_a_looping_recipient_costs_its_gas_limit_and_fails_alone(
    stack: Stack, chains: Chains
) -> None:
    alpha, beta = chains["alpha"], chains["beta"]
    looper = "0x3030303030303030303030303030303030303030"
    rpc(beta, "anvil_setCode", looper, LOOP_FOREVER)
    sender = Sender(alpha, stack.key("spare", 1))
    gateway = contract(alpha, "Gateway", alpha["gateway"])
    send = gateway.get_function_by_signature("send(uint64,address,bytes,uint64)")
    receipt = sender.wait(sender.send(send(beta["chain_id"], looper, b"spin", 300_000)))
    spinning = sent_id(alpha, receipt)
    shown = _parked(stack, spinning)
    assert "RecipientOutOfGas(300000)" in shown["last_error"]
    tx = stack_w3_receipt(beta, shown["dst_tx_hash"])
    assert tx["gasUsed"] < 300_000 + 150_000, "the relayer paid more than the message's gas"


def stack_w3_receipt(chain: dict[str, Any], tx_hash: str) -> Any:
    return contract(chain, "Gateway", chain["gateway"]).w3.eth.get_transaction_receipt(tx_hash)


@pytest.fixture(scope="module")
def side(stack: Stack, chains: Chains) -> Iterator[dict[str, str]]:
    """SIDE: a second asset, at home on alpha and wrapped on beta only, registered in the hub.
    A transfer of it to gamma cannot be minted there: it fails."""
    alpha, beta = chains["alpha"], chains["beta"]
    owner_a, owner_b = Sender(alpha, stack.key("deployer")), Sender(beta, stack.key("deployer"))
    receipt = owner_a.wait(
        owner_a.send(
            devnet_contract(owner_a.web3, "TestToken").constructor("Side", "SIDE", 10**24),
            gas=3_000_000,
        )
    )
    token = str(receipt["contractAddress"])
    bridge_a = contract(alpha, "TokenBridge", alpha["bridge"])
    owner_a.wait(owner_a.send(bridge_a.functions.setNativeToken(token, True)))
    bridge_b = contract(beta, "TokenBridge", beta["bridge"])
    owner_b.wait(
        owner_b.send(
            bridge_b.functions.createWrapped(alpha["chain_id"], token, "wSide", "wSIDE", 18),
            gas=3_000_000,
        )
    )
    wrapped = str(bridge_b.functions.wrappedToken(alpha["chain_id"], token).call())
    body = {
        "symbol": "SIDE",
        "home_chain": "alpha",
        "home_token": token,
        "deployments": {"beta": wrapped},
    }
    answer = httpx.post(f"{stack.api}/v1/assets", json=body, headers=ADMIN, timeout=30)
    assert answer.status_code == 201, answer.text
    erc20 = contract(alpha, "TestToken", token)
    user = Sender(alpha, stack.key("user"))
    user.wait(user.send(erc20.functions.mint(user.address, 1_000 * ITT)))
    user.wait(user.send(erc20.functions.approve(alpha["bridge"], 1_000 * ITT)))
    yield {"token": token, "wrapped": wrapped}


def _side_to_gamma(stack: Stack, chains: Chains, side: dict[str, str], amount: int) -> str:
    """bridgeOut SIDE alpha -> gamma as the user; the transfer's message id."""
    alpha, gamma = chains["alpha"], chains["gamma"]
    user = Sender(alpha, stack.key("user"))
    bridge = contract(alpha, "TokenBridge", alpha["bridge"])
    out = bridge.functions.bridgeOut(side["token"], gamma["chain_id"], user.address, amount)
    return sent_id(alpha, user.wait(user.send(out)))


def _parked(stack: Stack, message_id: str) -> dict[str, Any]:
    def check() -> Any:
        found = message(stack, message_id)
        return (
            found if found and found["state"] == "failed" and not found["next_attempt_at"] else None
        )

    return dict(wait_for("the transfer parked as failed", check, timeout=60))


def test_a_failed_transfer_is_returned_to_its_sender(
    stack: Stack, chains: Chains, side: dict[str, str], operator: dict[str, str]
) -> None:
    alpha = chains["alpha"]
    erc20 = contract(alpha, "TestToken", side["token"])
    user = Sender(alpha, stack.key("user")).address
    before = erc20.functions.balanceOf(user).call()
    stuck = _side_to_gamma(stack, chains, side, 7 * ITT)
    assert erc20.functions.balanceOf(user).call() == before - 7 * ITT
    shown = _parked(stack, stuck)
    assert "NoWrappedToken" in shown["last_error"]
    url = f"{stack.api}/v1/transfers/{stuck}/return"
    assert httpx.post(url, timeout=30).status_code == 401
    answer = httpx.post(url, headers=operator, timeout=30)
    assert answer.status_code == 202, answer.text
    assert answer.json()["return_requested_by"]
    wait_for("the transfer returned", lambda: state_of(stack, stuck) == "returned", timeout=60)
    transfer = stack.get(f"/v1/transfers/{stuck}")
    back = transfer["returned_in"]
    assert back and transfer["return_tx_hash"]
    wait_for("the return delivered", lambda: state_of(stack, back) == "delivered", timeout=60)
    assert stack.get(f"/v1/transfers/{back}")["returns"] == stuck
    assert erc20.functions.balanceOf(user).call() == before

    def at_rest() -> Any:
        asset = stack.get("/v1/assets/SIDE")
        return asset if asset["supply"]["in_flight"] == "0" else None

    asset = wait_for("SIDE at rest", at_rest, timeout=30)
    assert asset["status"] == "active" and asset["supply"]["balanced"] is True
    again = httpx.post(url, headers=operator, timeout=30)
    assert again.status_code == 409


def test_a_failed_transfer_is_retried_once_its_cause_is_fixed(
    stack: Stack, chains: Chains, side: dict[str, str], operator: dict[str, str]
) -> None:
    alpha, gamma = chains["alpha"], chains["gamma"]
    stuck = _side_to_gamma(stack, chains, side, 3 * ITT)
    _parked(stack, stuck)
    owner = Sender(gamma, stack.key("deployer"))
    bridge = contract(gamma, "TokenBridge", gamma["bridge"])
    owner.wait(
        owner.send(
            bridge.functions.createWrapped(alpha["chain_id"], side["token"], "wSide", "wSIDE", 18),
            gas=3_000_000,
        )
    )
    answer = httpx.post(f"{stack.api}/v1/messages/{stuck}/retry", headers=operator, timeout=30)
    assert answer.status_code == 200, answer.text
    wait_for("delivered once fixed", lambda: state_of(stack, stuck) == "delivered", timeout=60)
    wrapped = bridge.functions.wrappedToken(alpha["chain_id"], side["token"]).call()
    user = Sender(gamma, stack.key("user")).address
    assert contract(gamma, "BridgedToken", wrapped).functions.balanceOf(user).call() == 3 * ITT


def test_a_route_limit_is_applied_on_both_bridges(
    stack: Stack, chains: Chains, operator: dict[str, str]
) -> None:
    """An admin sets a limit for ITT on alpha -> beta; the guardian applies it outbound on
    alpha and inbound on beta; the route shows both buckets. Over the limit, bridgeOut is
    refused at the source (nothing leaves); removing the limit removes both buckets."""
    alpha = chains["alpha"]
    rid = route_id(stack, "alpha", "beta")
    url = f"{stack.api}/v1/routes/{rid}"
    limit = {"asset": "ITT", "capacity": str(10 * ITT), "refill_per_second": str(ITT)}
    assert httpx.patch(url, json={"limit": limit}, headers=operator).status_code == 403
    answer = httpx.patch(url, json={"limit": limit}, headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text
    try:
        route = wait_for("both buckets set", lambda: _synced(stack, rid), timeout=60)
        buckets = {(b["chain"], b["outbound"]) for b in route["limits"][0]["on_chain"]}
        assert buckets == {("alpha", True), ("beta", False)}
        user = Sender(alpha, stack.key("user"))
        bridge = contract(alpha, "TokenBridge", alpha["bridge"])
        token = token_of(stack.doc, alpha)
        erc20 = contract(alpha, "TestToken", token)
        user.wait(user.send(erc20.functions.approve(alpha["bridge"], 50 * ITT)))
        over = bridge.functions.bridgeOut(token, chains["beta"]["chain_id"], user.address, 50 * ITT)
        with pytest.raises(ContractLogicError) as refused:
            over.call({"from": user.address})
        assert "RateLimited" in decode_revert(HexBytes(str(refused.value.data)))
    finally:
        off = {"asset": "ITT", "capacity": "0", "refill_per_second": "0"}
        assert httpx.patch(url, json={"limit": off}, headers=ADMIN, timeout=30).status_code == 200
    wait_for("both buckets removed", lambda: _synced(stack, rid), timeout=60)


def _synced(stack: Stack, rid: int) -> Any:
    route = stack.get(f"/v1/routes/{rid}")
    return route if route["limits"] and route["limits"][0]["in_sync"] else None


def test_a_transfer_over_the_inbound_limit_waits_for_the_bucket(
    stack: Stack, chains: Chains
) -> None:
    """9 then 8 ITT leave alpha for beta while the route is paused; a limit of 10 ITT,
    refilled 1 ITT a second, is set and applied; the route resumes. beta's bridge lets the
    first in; the second waits for the bucket (no attempt charged) and is delivered."""
    alpha, beta = chains["alpha"], chains["beta"]
    rid = route_id(stack, "alpha", "beta")
    url = f"{stack.api}/v1/routes/{rid}"
    user = Sender(alpha, stack.key("user"))
    _patch(url, {"paused": True, "reason": "rate-limit test"})
    try:
        first = bridge_out(user, stack.doc, beta, user.address, 9 * ITT)
        second = bridge_out(user, stack.doc, beta, user.address, 8 * ITT)
        user.wait(second)
        ids = [stack_transfer_id(stack, tx) for tx in (first, second)]
        limit = {"asset": "ITT", "capacity": str(10 * ITT), "refill_per_second": str(ITT)}
        _patch(url, {"limit": limit})
        wait_for("the limit on both bridges", lambda: _synced(stack, rid), timeout=60)
    finally:
        _patch(url, {"paused": False})
    try:
        for message_id in ids:
            wait_for("delivered", lambda m=message_id: state_of(stack, m) == "delivered", 90)
        shown = message(stack, ids[1])
        assert shown is not None and shown["attempts"] == 0
        assert any("RateLimited" in (s["detail"] or "") for s in shown["timeline"])
    finally:
        _patch(url, {"limit": {"asset": "ITT", "capacity": "0", "refill_per_second": "0"}})
        wait_for("the limit removed", lambda: _synced(stack, rid), timeout=60)


def _patch(url: str, body: dict[str, Any]) -> None:
    answer = httpx.patch(url, json=body, headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text


def stack_transfer_id(stack: Stack, tx_hash: str) -> str:
    found = wait_for("the transfer seen", lambda: stack.get("/v1/transfers", src_tx_hash=tx_hash))
    return str(found[0]["message_id"])
