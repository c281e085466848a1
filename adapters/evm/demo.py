"""What a user does on a devnet, from its devnet.json: bridge ITT, post a plain message.

The `islands devnet bridge` / `islands devnet send` commands and the end-to-end tests use it,
so a newcomer needs no other EVM tool to see a transfer cross."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3.logs import DISCARD

from adapters.evm.devnet import Transactor, connect, contract
from adapters.evm.nodes import DevnetError


@dataclass(frozen=True)
class Sent:
    tx_hash: str
    message_id: str


def _chain(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for chain in doc["chains"]:
        if chain["name"] == name:
            return dict(chain)
    known = ", ".join(c["name"] for c in doc["chains"])
    raise DevnetError(f"no devnet chain named {name!r} (chains: {known})")


def user_key(doc: dict[str, Any]) -> str:
    return str(next(a["private_key"] for a in doc["accounts"] if a["role"] == "user"))


def itt_on(doc: dict[str, Any], chain: str) -> str:
    """The ITT contract on a chain: the home token at home, the wrapped one elsewhere."""
    asset = doc["asset"]
    return str(asset["home_token"] if chain == asset["home_chain"] else asset["deployments"][chain])


def bridge(
    doc: dict[str, Any], src: str, dst: str, amount: int, key: str, to: str | None = None
) -> Sent:
    """`TokenBridge.bridgeOut` of `amount` base units of ITT from `src` to `dst` (approving
    the bridge first at home); waits for the receipt."""
    source, target = _chain(doc, src), _chain(doc, dst)
    at_home = src == doc["asset"]["home_chain"]
    return bridge_out(
        source["rpc_url"],
        source["bridge"],
        itt_on(doc, src),
        target["chain_id"],
        amount,
        key,
        to=to,
        approve=at_home,
    )


def bridge_out(
    rpc_url: str,
    bridge_address: str,
    token: str,
    dst_chain_id: int,
    amount: int,
    key: str,
    *,
    to: str | None = None,
    approve: bool = False,
) -> Sent:
    """`TokenBridge.bridgeOut(token, dst, to, amount)` signed with `key` (to defaults to the
    key's own address); `approve`: let the bridge take the tokens first (a token at home is
    locked, a wrapped one is burnt). Waits for the receipt."""
    w3 = connect(rpc_url)
    tx = Transactor(w3, key)
    if approve:
        erc20 = contract(w3, "TestToken", token)
        tx.send(erc20.functions.approve(bridge_address, amount), "approve the bridge")
        tx.wait()  # bridgeOut's gas estimate needs the allowance in place
    bridge_contract = contract(w3, "TokenBridge", bridge_address)
    call = bridge_contract.functions.bridgeOut(token, dst_chain_id, to or tx.address, amount)
    tx.send(call, "bridgeOut")
    receipt = tx.wait()[-1]
    event = bridge_contract.events.BridgedOut().process_receipt(receipt, errors=DISCARD)[0]
    return Sent(
        receipt["transactionHash"].to_0x_hex(), "0x" + bytes(event["args"]["messageId"]).hex()
    )


def send_message(doc: dict[str, Any], src: str, dst: str, payload: bytes, key: str) -> Sent:
    """`Inbox.post` on `src` to the Inbox on `dst`: a plain message, not a token."""
    source, target = _chain(doc, src), _chain(doc, dst)
    w3 = connect(source["rpc_url"])
    tx = Transactor(w3, key)
    inbox = contract(w3, "Inbox", source["inbox"])
    tx.send(inbox.functions.post(target["chain_id"], target["inbox"], payload), "Inbox.post")
    receipt = tx.wait()[-1]
    event = inbox.events.Posted().process_receipt(receipt, errors=DISCARD)[0]
    return Sent(receipt["transactionHash"].to_0x_hex(), "0x" + bytes(event["args"]["id"]).hex())
