"""Faults of the chains themselves, under a stream of transfers: the relayer's key runs dry,
a destination refuses every delivery, a source chain reorgs deeper than its finality."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.faults.harness import Chain, FaultStack, Run, Stream, record, results_dir
from tests.integration.relay.chain import Sender, contract, rpc
from tests.integration.relay.stack import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
Chains = dict[str, Chain]
REORG_DEPTH = 20  # blocks of 0.25 s; the devnet's finality is 2 blocks
STRANGER = "0x000000000000000000000000000000000000dEaD"


def alerts_of(stack: FaultStack, kind: str) -> list[dict[str, Any]]:
    return [a for a in stack.get("/v1/alerts") if a["kind"] == kind]


def test_relayer_runs_out_of_funds(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """The relayer's balance on beta drops to zero: one clear alert, messages to beta wait
    (attested, nothing signed in vain), the others flow; funded again, it resumes alone."""
    s, beta = fault_stack, fault_chains["beta"]
    relayer = Sender(beta, s.key("relayer")).address
    funds = int(rpc(beta, "eth_getBalance", relayer, "latest"), 16)
    run = Run(s, fault_chains, "relayer-out-of-funds")
    with Stream(s, fault_chains) as stream:
        time.sleep(2)
        with run.fault():
            rpc(beta, "anvil_setBalance", relayer, "0x0")
            alert = wait_for("an alert", lambda: alerts_of(s, "relayer_funds"), timeout=30)
            assert relayer in alert[0]["message"] and "beta" in alert[0]["message"]
            wait_for(
                "messages to beta waiting attested",
                lambda: s.get("/v1/messages", dst="beta", state="attested")["items"],
                timeout=10,
            )
            time.sleep(2)
            assert not s.get("/v1/messages", dst="beta", state="failed")["items"]
            rpc(beta, "anvil_setBalance", relayer, hex(funds))
        time.sleep(2)
    figures = run.settle(stream)[0]
    assert not alerts_of(s, "relayer_funds")  # resolved once a delivery could be paid
    record(results_dir(), figures)
    print(f"\n{figures}")


def test_destination_rejects_every_delivery(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """gamma's bridge stops recognising the bridges of alpha and beta (its owner points them
    elsewhere): every transfer to gamma fails there (MessageFailed: UnknownRemoteBridge) and is
    parked as failed after its attempts; transfers between alpha and beta flow on. Put back,
    an operator retries the parked ones: each delivered once. (A paused bridge would not do:
    the hub waits for a pause to end instead of spending attempts on it.)"""
    s, gamma = fault_stack, fault_chains["gamma"]
    owner = Sender(gamma, s.key("deployer"))
    bridge = contract(gamma, "TokenBridge", gamma["bridge"])
    sources = [fault_chains["alpha"], fault_chains["beta"]]
    run = Run(s, fault_chains, "destination-rejects")

    def point_to(bridges: list[str]) -> None:
        for source, remote in zip(sources, bridges, strict=True):
            owner.wait(owner.send(bridge.functions.setRemoteBridge(source["chain_id"], remote)))

    def parked() -> list[dict[str, Any]]:
        failed = s.get("/v1/messages", dst="gamma", state="failed", limit=500)["items"]
        return [m for m in failed if m["next_attempt_at"] is None]

    with Stream(s, fault_chains) as stream:
        time.sleep(2)
        # gamma's own transfers go to the remote bridges it names: none is sent meanwhile (it
        # would go to the stranger), and the last ones are mined before the change.
        everything = list(stream.directions)
        stream.only([d for d in everything if d[0] != "gamma"])
        time.sleep(1.5)
        with run.fault():
            point_to([STRANGER, STRANGER])
            wait_for("2 transfers to gamma parked", lambda: len(parked()) >= 2, timeout=60)
            point_to([source["bridge"] for source in sources])
        stream.only(everything)
        time.sleep(1)
        stream.stop()

        def retried_all() -> bool:
            """Retry what is parked; those still in their backoff park later, and get theirs."""
            for message in parked():
                assert "UnknownRemoteBridge" in message["last_error"], message
                s.post(f"/v1/messages/{message['id']}/retry", ADMIN_TOKEN)
            return not s.get("/v1/messages", dst="gamma", state="failed", limit=500)["items"]

        wait_for("every parked transfer retried", retried_all, timeout=90, every=1.0)
    figures = run.settle(stream)[0]
    fault, seen = run.faults[0], run.watcher.first_seen
    others = [x for x in stream.sent if x.dst != "gamma" and x.outcome == "sent"]
    flowed = [x for x in others if fault.started < seen[str(x.message_id)] < fault.ended]
    assert len(flowed) >= 2, "transfers between alpha and beta flowed on meanwhile"
    record(results_dir(), figures)
    print(f"\n{figures}")


def test_deep_reorg_of_a_source_chain(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """alpha reorgs 20 blocks (its finality is 2) while transfers from it wait, attested, for
    beta's gateway (paused by its owner). The hub pauses alpha and says why; once beta is
    unpaused and an operator resumes alpha, nothing from the dropped blocks is delivered,
    every transfer that survived is delivered once, and the supply balances."""
    s, alpha, beta = fault_stack, fault_chains["alpha"], fault_chains["beta"]
    owner = Sender(beta, s.key("deployer"))
    gateway = contract(beta, "Gateway", beta["gateway"])
    run = Run(s, fault_chains, "deep-reorg")
    owner.wait(owner.send(gateway.functions.pause()))
    with Stream(s, fault_chains, directions=[("alpha", "beta"), ("gamma", "beta")]) as stream:
        wait_for(
            "transfers from alpha waiting attested for beta",
            lambda: s.get("/v1/messages", src="alpha", dst="beta", state="attested")["items"],
            timeout=30,
        )
        time.sleep(2)
        stream.only([("gamma", "beta")])
        stream.resolve()
        with run.fault():
            rpc(alpha, "anvil_reorg", REORG_DEPTH, [])
            chain = wait_for("alpha paused", lambda: paused(s, "alpha"), timeout=30)
            assert "deep reorg" in chain["status_reason"], chain
            assert alerts_of(s, "deep_reorg")
            owner.wait(owner.send(gateway.functions.unpause()))
            time.sleep(2)
            s.patch("/v1/chains/alpha", {"paused": False}, ADMIN_TOKEN)
        stream.recheck("alpha")
        stream.resync("alpha")
        stream.only([("alpha", "beta"), ("gamma", "beta")])
        time.sleep(3)
    dropped = [x for x in stream.sent if x.outcome == "dropped"]
    assert dropped, "the reorg dropped transfers"
    figures = run.settle(stream)[0]
    counts = run.watcher.recount(run.blocks)
    seen = []
    for x in dropped:
        assert counts[str(x.message_id)] == 0, f"{x} was delivered from a dropped block"
        answer = httpx.get(f"{s.api}/v1/messages/{x.message_id}", timeout=30)
        if answer.status_code == 404:
            continue  # dropped before the hub saw it
        seen.append(answer.json())
    assert seen, "the hub had seen some of the dropped transfers"
    assert all(m["state"] == "orphaned" for m in seen), seen
    assert all("deep reorg" in m["last_error"] for m in seen), seen
    figures.notes.append(
        f"{len(dropped)} transfers dropped by the reorg ({len(seen)} seen by the hub, orphaned);"
        " none delivered"
    )
    record(results_dir(), figures)
    print(f"\n{figures}")


def paused(stack: FaultStack, name: str) -> dict[str, Any] | None:
    chain = stack.get(f"/v1/chains/{name}")
    return chain if chain["status"] == "paused" else None
