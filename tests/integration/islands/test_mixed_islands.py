"""A hub whose islands differ (conftest.ISLANDS: geth --dev every 2 s and final 3 blocks deep,
Hardhat instant and final by its `finalized` tag, Ganache every second and final 1 deep):
transfers cross every pair of them, and no message is attested before its block is final by
its own chain's rule. Then a fourth island (anvil) joins the asset in one step, after a first
try that stops halfway, and a transfer to it arrives with no other step.

The tests share one stack and run in file order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from adapters.base import FinalityPolicy
from adapters.evm.adapter import EvmAdapter
from adapters.evm.devnet import DEPLOYER
from adapters.evm.nodes import NodeControl, NodeKind
from tests.conftest import ADMIN_TOKEN
from tests.integration.helpers import islands
from tests.integration.islands.conftest import ISLANDS_ENV, USER, Joiner
from tests.integration.relay.chain import Sender, balance, bridge_out, contract
from tests.integration.relay.stack import Stack, wait_for

pytestmark = pytest.mark.integration
Chains = dict[str, dict[str, Any]]
ITT = 10**18
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PAST_FINALITY = {"finalized", "attested", "submitted", "delivered"}


class FinalityWatch:
    """Samples the hub while messages travel. Whenever a message has an attestation or a
    state past `observed`, its source block must be final by its own chain's rule, read from
    the chain after the hub answered (so a block final only later cannot pass)."""

    def __init__(self, stack: Stack, chains: Chains) -> None:
        self.stack, self.chains = stack, chains
        self.messages: set[str] = set()
        self.violations: list[str] = []
        self.checks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _final_block(self, chain: dict[str, Any]) -> int:
        adapter = EvmAdapter([chain["rpc_url"]], timeout=30)
        return adapter.finalized_block(FinalityPolicy.parse(chain["finality"])).number

    def _check(self, message_id: str) -> None:
        answer = httpx.get(f"{self.stack.api}/v1/messages/{message_id}", timeout=30)
        if answer.status_code != 200:
            return
        m = answer.json()
        if not m["attestations"] and m["state"] not in PAST_FINALITY:
            return
        chain = self.chains[m["src_chain"]]
        final = self._final_block(chain)
        self.checks += 1
        if m["src_block_number"] > final:
            self.violations.append(
                f"{message_id} from {chain['name']} (finality {chain['finality']}): "
                f"{m['state']} with {len(m['attestations'])} attestation(s) at block "
                f"{m['src_block_number']}, final block {final}"
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            for message_id in list(self.messages):
                self._check(message_id)
            time.sleep(0.15)

    @contextmanager
    def running(self) -> Iterator[FinalityWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)


def transfer_of(stack: Stack, tx_hash: str) -> dict[str, Any] | None:
    found = stack.get("/v1/transfers", src_tx_hash=tx_hash)
    return found[0] if found else None


def send(stack: Stack, chains: Chains, src: str, dst: str, amount: int) -> str:
    sender = Sender(chains[src], stack.key("user"))
    tx = bridge_out(sender, stack.doc, chains[dst], sender.address, amount)
    sender.wait(tx)
    return tx


def delivered(stack: Stack, tx: str, watch: FinalityWatch, timeout: float = 120) -> Any:
    seen = wait_for(f"transfer {tx} observed", lambda: transfer_of(stack, tx), timeout=60)
    watch.messages.add(seen["message_id"])

    def done() -> Any:
        t = transfer_of(stack, tx)
        return t if t and t["state"] == "delivered" else None

    return wait_for(f"transfer {tx} delivered", done, timeout=timeout)


def test_each_island_keeps_its_own_finality(islands_stack: Stack, chains: Chains) -> None:
    registered = {c["name"]: c for c in islands_stack.get("/v1/chains")}
    assert {name: c["finality"] for name, c in registered.items()} == {
        "geth-2s": 3,
        "hardhat-instant": "finalized",
        "ganache-1s": 1,
    }
    for name in registered:
        chain = islands_stack.get(f"/v1/chains/{name}")
        assert chain["live"]["reachable"], chain
        head, final = chain["live"]["head"], chain["live"]["finalized"]
        depth = {"geth-2s": 3, "hardhat-instant": 0, "ganache-1s": 1}[name]
        assert head - depth - 2 <= final <= head - depth + 2, chain  # the head moves meanwhile


def test_transfers_cross_every_pair_and_wait_for_finality(
    islands_stack: Stack, chains: Chains
) -> None:
    stack, doc, who = islands_stack, islands_stack.doc, USER.address
    watch = FinalityWatch(stack, chains)
    with watch.running():
        # From home first (the user holds ITT only there), to both others at once; then
        # between the two wrapped islands, and back home.
        first = [
            ("geth-2s", "hardhat-instant", 100 * ITT),
            ("geth-2s", "ganache-1s", 50 * ITT),
        ]
        second = [("hardhat-instant", "ganache-1s", 30 * ITT), ("ganache-1s", "geth-2s", 20 * ITT)]
        start = {name: balance(doc, chains[name], who) for name in chains if name in doc_names(doc)}
        for wave in (first, second):
            txs = [(send(stack, chains, src, dst, amount), src, dst) for src, dst, amount in wave]
            for tx, src, dst in txs:
                done = delivered(stack, tx, watch)
                assert (done["src_chain"], done["dst_chain"]) == (src, dst)
                assert [s["state"] for s in done["timeline"]] == [
                    "observed",
                    "finalized",
                    "attested",
                    "submitted",
                    "delivered",
                ]
        time.sleep(0.5)  # one more round of samples after the last delivery
    assert watch.violations == []
    assert watch.checks >= 4
    end = {name: balance(doc, chains[name], who) for name in start}
    assert end["geth-2s"] - start["geth-2s"] == -130 * ITT
    assert end["hardhat-instant"] - start["hardhat-instant"] == 70 * ITT
    assert end["ganache-1s"] - start["ganache-1s"] == 60 * ITT


def doc_names(doc: dict[str, Any]) -> set[str]:
    """The chains the asset is on (the joiner is not, yet)."""
    asset = doc["asset"]
    return {asset["home_chain"], *asset["deployments"]}


def test_a_family_without_an_adapter_is_refused(islands_stack: Stack, joiner: Joiner) -> None:
    body = {
        "name": "cm",
        "chain_id": 7_777,
        "family": "chainmaker",
        "rpc_urls": [joiner.node.rpc_url],
        "finality": 0,
        "gateway_address": joiner.deployment.gateway,
        "bridge_address": joiner.deployment.bridge,
    }
    answer = httpx.post(f"{islands_stack.api}/v1/chains", json=body, headers=ADMIN, timeout=30)
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert "chainmaker" in message and "evm" in message


def _wrapped_created(joiner: Joiner) -> int:
    bridge = contract({"rpc_url": joiner.node.rpc_url}, "TokenBridge", joiner.deployment.bridge)
    return len(bridge.events.WrappedTokenCreated().get_logs(from_block=0, to_block="latest"))


def test_an_island_joins_in_one_step(islands_stack: Stack, chains: Chains, joiner: Joiner) -> None:
    stack = islands_stack
    entry = joiner.entry()
    registration = {
        "name": entry["name"],
        "chain_id": entry["chain_id"],
        "family": "evm",
        "rpc_urls": [entry["rpc_url"]],
        "finality": entry["finality"],
        "gateway_address": entry["gateway"],
        "bridge_address": entry["bridge"],
    }
    answer = httpx.post(f"{stack.api}/v1/chains", json=registration, headers=ADMIN, timeout=30)
    assert answer.status_code == 201, answer.text
    url = f"{stack.api}/v1/assets/ITT/deployments"

    # The deployer has nothing to pay gas with on one chain: the join stops there.
    hardhat = NodeControl(NodeKind.HARDHAT, chains["hardhat-instant"]["rpc_url"])
    hardhat.set_balance(DEPLOYER.address, 0)
    try:
        stopped = httpx.post(url, json={"chain": "anvil-join"}, headers=ADMIN, timeout=300)
    finally:
        hardhat.set_balance(DEPLOYER.address, 10_000 * 10**18)
    assert stopped.status_code == 502, stopped.text
    error = stopped.json()["error"]
    assert error["code"] == "chain_action_failed"
    assert error["details"]["chain"] == "hardhat-instant" and "run it again" in error["message"]
    assert "anvil-join" not in stack.get("/v1/assets/ITT")["deployments"]
    assert _wrapped_created(joiner) == 1  # done before the stop, and it stays

    # Run again, from the CLI: it finishes what is left and creates nothing twice.
    finished = islands(
        "connect",
        "--chain",
        "anvil-join",
        "--asset",
        "ITT",
        database_url=stack.db_url,
        **ISLANDS_ENV,
    )
    assert finished.returncode == 0, finished.stderr
    report = _json(finished.stdout)
    assert report["created_token"] is False and report["recorded"] is True
    assert len(report["transactions"]) == 2  # hardhat's and ganache's bridges trust it now
    assert len(report["routes_added"]) == 6  # both ways between it and each island
    token = report["token"]
    assert _wrapped_created(joiner) == 1
    assert stack.get("/v1/assets/ITT")["deployments"]["anvil-join"] == token

    again = httpx.post(url, json={"chain": "anvil-join"}, headers=ADMIN, timeout=300)
    assert again.status_code == 200, again.text
    assert again.json()["transactions"] == [] and again.json()["token"] == token

    # A transfer to the new island works with no other step.
    joined = {**entry, "name": "anvil-join"}
    all_chains = {**chains, "anvil-join": joined}
    watch = FinalityWatch(stack, all_chains)
    with watch.running():
        tx = send(stack, all_chains, "geth-2s", "anvil-join", 5 * ITT)
        done = delivered(stack, tx, watch)
    assert done["dst_chain"] == "anvil-join"
    wrapped = contract(joined, "BridgedToken", token)
    assert wrapped.functions.balanceOf(USER.address).call() == 5 * ITT
    assert watch.violations == []


def _json(text: str) -> dict[str, Any]:
    import json

    return dict(json.loads(text))
