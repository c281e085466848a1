"""What a user does on the chains themselves: bridge tokens, post messages, read balances;
and what a test does to a chain: stop mining, reorg, impersonate."""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from adapters.evm.contracts import load_artifact


@cache
def w3(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def contract(chain: dict[str, Any], name: str, address: str) -> Contract:
    return w3(chain["rpc_url"]).eth.contract(address=address, abi=list(load_artifact(name).abi))


def rpc(chain: dict[str, Any], method: str, *params: Any) -> Any:
    answer = w3(chain["rpc_url"]).provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer.get("result")


class Sender:
    """Signs and sends a user's transactions, keeping its own nonce to send many at once."""

    def __init__(self, chain: dict[str, Any], key: str) -> None:
        self.chain, self.key = chain, key
        self.address = Account.from_key(key).address
        self.web3 = w3(chain["rpc_url"])
        self.nonce = self.web3.eth.get_transaction_count(self.address, "pending")

    def send(self, call: Any, gas: int = 400_000) -> str:
        tx = call.build_transaction(
            {
                "from": self.address,
                "nonce": self.nonce,
                "gas": gas,
                "chainId": self.chain["chain_id"],
            }
        )
        self.nonce += 1
        signed = self.web3.eth.account.sign_transaction(tx, self.key)
        return "0x" + self.web3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix(
            "0x"
        )

    def wait(self, tx_hash: str) -> Any:
        receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        assert receipt["status"] == 1, f"{tx_hash} reverted"
        return receipt


def token_of(doc: dict[str, Any], chain: dict[str, Any]) -> str:
    """The ITT contract on a chain: the home token on alpha, the wrapped one elsewhere."""
    asset = doc["asset"]
    return str(
        asset["home_token"]
        if chain["name"] == asset["home_chain"]
        else asset["deployments"][chain["name"]]
    )


def balance(doc: dict[str, Any], chain: dict[str, Any], holder: str) -> int:
    return int(
        contract(chain, "TestToken", token_of(doc, chain)).functions.balanceOf(holder).call()
    )


def bridge_out(
    sender: Sender, doc: dict[str, Any], dst: dict[str, Any], to: str, amount: int
) -> str:
    chain = sender.chain
    token = token_of(doc, chain)
    bridge = contract(chain, "TokenBridge", chain["bridge"])
    if chain["name"] == doc["asset"]["home_chain"]:
        erc20 = contract(chain, "TestToken", token)
        sender.wait(sender.send(erc20.functions.approve(chain["bridge"], amount)))
    return sender.send(bridge.functions.bridgeOut(token, dst["chain_id"], to, amount))


def delivered_counts(chain: dict[str, Any], from_block: int = 0) -> Counter[str]:
    """How often the chain's gateway emitted MessageDelivered for each id, read from the chain."""
    gateway = contract(chain, "Gateway", chain["gateway"])
    logs = gateway.events.MessageDelivered().get_logs(from_block=from_block, to_block="latest")
    return Counter("0x" + bytes(log["args"]["id"]).hex() for log in logs)
