"""The relay through real Celery workers, three validators (threshold 2), Postgres, Redis and
three anvil chains. Balances and deliveries are checked on the chains themselves.

The tests share one stack and run in file order: the last ones pause what they break."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest
from web3.logs import DISCARD

from tests.conftest import ADMIN_TOKEN
from tests.integration.helpers import islands
from tests.integration.relay.chain import (
    Sender,
    balance,
    bridge_out,
    contract,
    delivered_counts,
    rpc,
    token_of,
)
from tests.integration.relay.stack import Stack, wait_for

pytestmark = pytest.mark.integration
Chains = dict[str, dict[str, Any]]
ITT = 10**18
LIFE = ["observed", "finalized", "attested", "submitted", "delivered"]


def user(stack: Stack, chain: dict[str, Any]) -> Sender:
    return Sender(chain, stack.key("user"))


def post(
    stack: Stack, src: dict[str, Any], dst_chain_id: int, recipient: str, payload: bytes
) -> str:
    """`Inbox.post` on `src` as the devnet user; returns the message id."""
    inbox = contract(src, "Inbox", src["inbox"])
    sender = user(stack, src)
    receipt = sender.wait(sender.send(inbox.functions.post(dst_chain_id, recipient, payload)))
    posted = inbox.events.Posted().process_receipt(receipt, errors=DISCARD)[0]
    return "0x" + bytes(posted["args"]["id"]).hex()


def transfer_of(stack: Stack, tx_hash: str) -> dict[str, Any] | None:
    found = stack.get("/v1/transfers", src_tx_hash=tx_hash)
    return found[0] if found else None


def settled(stack: Stack, tx_hash: str, state: str = "delivered", timeout: float = 60) -> Any:
    def check() -> Any:
        t = transfer_of(stack, tx_hash)
        return t if t and t["state"] == state else None

    return wait_for(f"transfer {tx_hash} {state}", check, timeout)


def message_state(stack: Stack, message_id: str) -> str | None:
    """The message's state, or None while the hub has not observed it yet."""
    answer = httpx.get(f"{stack.api}/v1/messages/{message_id}", timeout=30)
    return None if answer.status_code == 404 else str(answer.json()["state"])


def test_transfers_in_every_direction(stack: Stack, chains: Chains) -> None:
    alpha, beta, gamma = chains["alpha"], chains["beta"], chains["gamma"]
    doc, who = stack.doc, user(stack, alpha).address
    moves = [(alpha, beta, 100 * ITT), (beta, alpha, 40 * ITT), (beta, gamma, 30 * ITT)]
    for src, dst, amount in moves:
        before_src, before_dst = balance(doc, src, who), balance(doc, dst, who)
        sender = user(stack, src)
        tx = bridge_out(sender, doc, dst, who, amount)
        sender.wait(tx)
        seen = wait_for("the transfer to show", lambda tx=tx: transfer_of(stack, tx), timeout=5)
        assert seen["amount"] == str(amount) and seen["asset"] == "ITT"
        assert (seen["src_chain"], seen["dst_chain"]) == (src["name"], dst["name"])
        done = settled(stack, tx)
        assert [step["state"] for step in done["timeline"]] == LIFE, done["timeline"]
        assert all(step["at"] for step in done["timeline"])
        assert balance(doc, src, who) == before_src - amount
        assert balance(doc, dst, who) == before_dst + amount
        assert delivered_counts(dst)[done["message_id"]] == 1

    def at_rest() -> Any:
        supply = stack.get("/v1/assets/ITT")["supply"]
        return supply if supply["in_flight"] == "0" else None

    # Locked at home backs what is wrapped; anything more was donated to the bridge (a
    # surplus, which an earlier test may have made), never less.
    supply = wait_for("the asset to settle", at_rest, timeout=30)
    wrapped = sum(int(v) for v in supply["wrapped"].values())
    assert int(supply["locked_at_home"]) - wrapped == int(supply["surplus"]) >= 0
    assert supply["wrapped"]["gamma"] == str(30 * ITT)


def test_plain_message_between_contracts(stack: Stack, chains: Chains) -> None:
    alpha, gamma = chains["alpha"], chains["gamma"]
    inbox_g = contract(gamma, "Inbox", gamma["inbox"])
    received = inbox_g.functions.received().call()
    message_id = post(stack, alpha, gamma["chain_id"], gamma["inbox"], b"hello, gamma")
    wait_for("the message delivered", lambda: message_state(stack, message_id) == "delivered")
    message = stack.get(f"/v1/messages/{message_id}")
    assert message["sender"] == alpha["inbox"] and message["transfer"] is None
    assert len(message["attestations"]) >= 2
    assert inbox_g.functions.received().call() == received + 1
    assert inbox_g.functions.lastPayload().call() == b"hello, gamma"
    assert inbox_g.functions.lastSender().call() == alpha["inbox"]
    listed = stack.get("/v1/messages", src="alpha", dst="gamma", state="delivered")
    assert message_id in [m["id"] for m in listed["items"]]


def test_a_recipient_replies_from_its_handler(stack: Stack, chains: Chains) -> None:
    """Request and reply: the Inbox on beta answers a ping with a pong sent from inside its
    handler; the hub relays the answer back to alpha."""
    alpha, beta = chains["alpha"], chains["beta"]
    inbox_a = contract(alpha, "Inbox", alpha["inbox"])
    ping = post(stack, alpha, beta["chain_id"], beta["inbox"], b"ping")
    wait_for("the ping delivered", lambda: message_state(stack, ping) == "delivered")

    def pong() -> Any:
        found = stack.get("/v1/messages", src="beta", dst="alpha", sender=beta["inbox"])["items"]
        return next((m for m in found if m["payload"] == "0x" + b"pong".hex()), None)

    answer = wait_for("the pong observed", pong)
    wait_for("the pong delivered", lambda: message_state(stack, answer["id"]) == "delivered")
    assert inbox_a.functions.lastPayload().call() == b"pong"
    assert inbox_a.functions.lastSender().call() == beta["inbox"]


def test_message_without_a_route_is_rejected(stack: Stack, chains: Chains) -> None:
    alpha = chains["alpha"]
    message_id = post(stack, alpha, 999_999, alpha["inbox"], b"anyone?")
    wait_for("the message rejected", lambda: message_state(stack, message_id) == "rejected")
    message = stack.get(f"/v1/messages/{message_id}")
    assert "no route" in message["last_error"] and message["dst_chain"] is None


def test_attestations_must_come_from_the_validator_set(stack: Stack) -> None:
    delivered = stack.get("/v1/messages", state="delivered", limit=1)["items"][0]
    url = f"{stack.api}/v1/messages/{delivered['id']}/attestations"
    forged = "0x" + "11" * 64 + "1b"
    answer = httpx.post(url, json={"signature": forged}, timeout=10)
    assert answer.status_code == 422, answer.text
    assert httpx.post(url, json={"signature": "0x1234"}, timeout=10).status_code == 422
    again = httpx.post(
        url, json={"signature": delivered["attestations"][0]["signature"]}, timeout=10
    )
    assert (
        again.status_code == 201
        and again.json()["signer"] == delivered["attestations"][0]["validator"]
    )
    assert len(stack.get(f"/v1/messages/{delivered['id']}")["attestations"]) == len(
        delivered["attestations"]
    )


def test_failing_recipient_is_parked_then_retried(stack: Stack, chains: Chains) -> None:
    alpha, beta = chains["alpha"], chains["beta"]
    message_id = post(stack, alpha, beta["chain_id"], beta["inbox"], b"\xffno")

    def parked() -> Any:
        if message_state(stack, message_id) != "failed":
            return None
        m = stack.get(f"/v1/messages/{message_id}")
        return m if m["next_attempt_at"] is None else None

    message = wait_for("the message parked as failed", parked, timeout=60)
    assert message["attempts"] == 2 and "Refused" in message["last_error"]
    url = f"{stack.api}/v1/messages/{message_id}/retry"
    assert httpx.post(url, timeout=10).status_code == 401
    key = islands("keys", "create", "--role", "operator", database_url=stack.db_url).stdout.strip()
    retried = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert retried.status_code == 200, retried.text
    assert retried.json()["attempts"] == 0
    wait_for("it to fail again", lambda: stack.get(f"/v1/messages/{message_id}")["attempts"] >= 1)
    assert delivered_counts(beta)[message_id] == 0


def test_reorg_before_finality_orphans_the_message(stack: Stack, chains: Chains) -> None:
    alpha, beta = chains["alpha"], chains["beta"]
    who = user(stack, alpha).address
    before = balance(stack.doc, beta, who)
    rpc(alpha, "evm_setIntervalMining", 0)
    try:
        sender = user(stack, alpha)
        contract_ = contract(alpha, "TestToken", token_of(stack.doc, alpha))
        sender.send(contract_.functions.approve(alpha["bridge"], 7 * ITT))
        rpc(alpha, "evm_mine")
        tx = bridge_out_no_approve(sender, stack, alpha, beta, who, 7 * ITT)
        rpc(alpha, "evm_mine")
        seen = wait_for("the message observed", lambda: transfer_of(stack, tx), timeout=10)
        assert seen["state"] == "observed"
        rpc(alpha, "anvil_reorg", 1, [])
    finally:
        rpc(alpha, "evm_setIntervalMining", 1)
    orphaned = settled(stack, tx, state="orphaned", timeout=30)
    assert "reorg" in orphaned["timeline"][-1]["detail"]
    time.sleep(3)
    assert message_state(stack, orphaned["message_id"]) == "orphaned"
    assert delivered_counts(beta)[orphaned["message_id"]] == 0
    assert balance(stack.doc, beta, who) == before


def bridge_out_no_approve(
    sender: Sender, stack: Stack, src: dict[str, Any], dst: dict[str, Any], to: str, amount: int
) -> str:
    bridge = contract(src, "TokenBridge", src["bridge"])
    return sender.send(
        bridge.functions.bridgeOut(token_of(stack.doc, src), dst["chain_id"], to, amount)
    )


def test_worker_killed_mid_batch_of_200(stack: Stack, chains: Chains) -> None:
    alpha, beta = chains["alpha"], chains["beta"]
    count, amount = 200, ITT
    sender = user(stack, alpha)
    who = sender.address
    before = balance(stack.doc, beta, who)
    start_block = contract(beta, "Gateway", beta["gateway"]).w3.eth.block_number
    token = contract(alpha, "TestToken", token_of(stack.doc, alpha))
    sender.wait(sender.send(token.functions.approve(alpha["bridge"], count * amount)))
    started = time.monotonic()
    hashes = [bridge_out_no_approve(sender, stack, alpha, beta, who, amount) for _ in range(count)]

    def mid_batch() -> Any:
        """Some of the 200 sent or delivered, not all: the worker is in the middle."""
        moving = stack.get("/v1/messages", dst="beta", state="submitted", limit=500)["items"]
        return len(moving)

    wait_for("a batch in flight", mid_batch, timeout=120, every=0.05)
    stack.kill("relay", signal.SIGKILL)
    time.sleep(1)
    stack.start_relay_worker()

    def all_delivered() -> bool:
        return all((t := transfer_of(stack, h)) and t["state"] == "delivered" for h in hashes)

    wait_for(f"all {count} transfers delivered", all_delivered, timeout=240, every=0.5)
    elapsed = time.monotonic() - started
    (stack.log_dir.parent / "relay-200.txt").write_text(f"{count} transfers in {elapsed:.1f}s\n")
    print(f"\n{count} transfers alpha->beta, relay worker SIGKILLed mid-batch: {elapsed:.1f}s")
    ids = {transfer_of(stack, h)["message_id"] for h in hashes}
    counts = delivered_counts(beta, start_block)
    assert len(ids) == count
    assert all(counts[i] == 1 for i in ids), "every transfer delivered exactly once"
    assert balance(stack.doc, beta, who) == before + count * amount


def test_stuck_delivery_is_replaced_then_alerted_at_the_fee_cap(
    stack: Stack, chains: Chains
) -> None:
    alpha, beta = chains["alpha"], chains["beta"]
    who = user(stack, alpha).address
    before = balance(stack.doc, beta, who)
    rpc(beta, "evm_setIntervalMining", 0)  # beta stops making blocks: the delivery waits
    try:
        sender = user(stack, alpha)
        tx = bridge_out(sender, stack.doc, beta, who, 3 * ITT)
        sender.wait(tx)
        submitted = settled(stack, tx, state="submitted", timeout=30)
        first_try = stack.get(f"/v1/messages/{submitted['message_id']}")["dst_tx_hash"]
        alert = wait_for(
            "a stuck-transaction alert",
            lambda: [a for a in stack.get("/v1/alerts") if a["kind"] == "stuck_tx"],
            timeout=60,
        )
        assert "fee cap" in alert[0]["message"]
    finally:
        rpc(beta, "evm_setIntervalMining", 1)
    done = settled(stack, tx, timeout=60)
    assert done["dst_tx_hash"] != first_try  # a replacement with a higher fee was mined
    assert delivered_counts(beta)[done["message_id"]] == 1
    wait_for(
        "the alert resolved",
        lambda: not [a for a in stack.get("/v1/alerts") if a["kind"] == "stuck_tx"],
    )
    assert balance(stack.doc, beta, who) == before + 3 * ITT


def test_validator_set_rotation(stack: Stack, chains: Chains) -> None:
    """The owner changes beta's set (a new epoch, validator 3 out): the hub reads it, and the
    next transfer is delivered with signatures of the new epoch from the remaining two."""
    alpha, beta = chains["alpha"], chains["beta"]
    gateway = contract(beta, "Gateway", beta["gateway"])
    epoch = gateway.functions.epoch().call()
    owner = Sender(beta, stack.key("deployer"))
    keep = stack.doc["validators"]["addresses"][:2]
    owner.wait(owner.send(gateway.functions.setValidators(keep, 2)))
    assert gateway.functions.epoch().call() == epoch + 1
    who = user(stack, alpha).address
    before = balance(stack.doc, beta, who)
    sender = user(stack, alpha)
    tx = bridge_out(sender, stack.doc, beta, who, 2 * ITT)
    sender.wait(tx)
    done = settled(stack, tx, timeout=60)
    message = stack.get(f"/v1/messages/{done['message_id']}")
    signers = {a["validator"] for a in message["attestations"] if a["epoch"] == epoch + 1}
    assert signers == set(keep)
    assert balance(stack.doc, beta, who) == before + 2 * ITT
    # The supply watch has checked every tick of every test so far, transfers in flight and
    # all: it never found a mismatch, so it never paused the asset.
    assert stack.get("/v1/assets/ITT")["status"] == "active"
    assert not [a for a in stack.get("/v1/alerts") if a["kind"] == "supply_mismatch"]


def test_supply_watch_catches_a_mint_outside_the_bridge(stack: Stack, chains: Chains) -> None:
    beta = chains["beta"]
    wrapped = contract(beta, "BridgedToken", token_of(stack.doc, beta))
    rpc(beta, "anvil_impersonateAccount", beta["bridge"])
    rpc(beta, "anvil_setBalance", beta["bridge"], hex(10**18))
    try:
        tx = wrapped.functions.mint(user(stack, beta).address, 5 * ITT).transact(
            {"from": beta["bridge"], "gas": 200_000}
        )
        assert wrapped.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    finally:
        rpc(beta, "anvil_stopImpersonatingAccount", beta["bridge"])

    def paused() -> Any:
        asset = stack.get("/v1/assets/ITT")
        return asset if asset["status"] == "paused" else None

    asset = wait_for("the asset paused", paused, timeout=30)
    assert asset["supply"]["balanced"] is False
    assert "supply mismatch" in asset["status_reason"]
    assert all(r["status"] == "paused" for r in stack.get("/v1/routes"))
    assert any(a["kind"] == "supply_mismatch" for a in stack.get("/v1/alerts"))


def test_deep_reorg_pauses_the_chain(stack: Stack, chains: Chains) -> None:
    gamma = chains["gamma"]

    def near_head() -> bool:
        head = int(rpc(gamma, "eth_blockNumber"), 16)
        cursor = stack.get("/v1/chains/gamma")["relay"]["cursor_block"]
        return head > 20 and cursor is not None and cursor >= head - 4

    # The hub's final block (2 below its cursor) must be among the replaced ones: the scan
    # is near the head, and the reorg goes well below it (blocks come every 0.25 s).
    wait_for("gamma scanned up to near its head", near_head)
    rpc(gamma, "anvil_reorg", 20, [])

    def paused() -> Any:
        chain = stack.get("/v1/chains/gamma")
        return chain if chain["status"] == "paused" else None

    chain = wait_for("gamma paused", paused, timeout=30)
    assert "deep reorg" in chain["status_reason"]
    assert any(a["kind"] == "deep_reorg" for a in stack.get("/v1/alerts"))
    time.sleep(2)
    assert stack.get("/v1/chains/gamma")["status"] == "paused"  # it waits for an operator

    # The operator resumes: the hub accepts the new history and scans gamma again from it.
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    resumed = httpx.patch(
        f"{stack.api}/v1/chains/gamma", json={"paused": False}, headers=admin, timeout=30
    )
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    cursor = stack.get("/v1/chains/gamma")["relay"]["cursor_block"]
    wait_for(
        "gamma scanned again",
        lambda: stack.get("/v1/chains/gamma")["relay"]["cursor_block"] > cursor + 4,
    )
    assert stack.get("/v1/chains/gamma")["status"] == "active"
    assert not any(a["kind"] == "deep_reorg" for a in stack.get("/v1/alerts"))
