"""The raw limit: what the chains themselves take, with no hub in between.

- Pre-signed `deliverBatch` transactions carrying transfers (alpha's bridge to beta's: beta
  mints wrapped ITT), each message with a threshold of real validator signatures over the
  destination's EIP-712 digest (hub.domain.attestation), sent straight to beta's gateway
  from the relayer account: messages per second and gas per message, per batch size.
- Pre-signed `TokenBridge.bridgeOut` transactions sent to alpha: how fast the source takes
  them (answered by the node) and includes them (last receipt)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from adapters.base import Message, SignedMessage
from adapters.evm.adapter import delivery_calldata
from adapters.evm.devnet import VALIDATORS
from bench.chain import (
    TOPIC_DELIVERED,
    Rpc,
    account_key,
    approve_bridge,
    bridge_out_calls,
    chain_doc,
    estimate,
    presign,
    send_all,
    start_devnet,
    wait_receipt,
)
from bench.result import Budget, Result, rate
from hub.domain.attestation import attestation_digest, sign_digest

TRANSFER_TYPES = ["uint64", "address", "address", "address", "uint256"]
GAS_LIMIT = 200_000  # the gateway's default per message, what bridgeOut asks for


def transfer_messages(doc: dict[str, Any], first_nonce: int, n: int) -> list[Message]:
    """`n` transfers of 1 base unit of alpha's ITT to the user on beta, nonces unused by the
    real gateway (the destination only checks signatures and that the id is new)."""
    alpha, beta = chain_doc(doc, "alpha"), chain_doc(doc, "beta")
    user = Account.from_key(account_key(doc, "user")).address
    payload = abi_encode(
        TRANSFER_TYPES, [alpha["chain_id"], doc["asset"]["home_token"], user, user, 1]
    )
    return [
        Message(
            src_chain_id=alpha["chain_id"],
            src_gateway=alpha["gateway"],
            dst_chain_id=beta["chain_id"],
            nonce=first_nonce + i,
            sender=alpha["bridge"],
            recipient=beta["bridge"],
            gas_limit=GAS_LIMIT,
            payload=payload,
        )
        for i in range(n)
    ]


def attest(messages: list[Message], epoch: int, beta: dict[str, Any]) -> list[SignedMessage]:
    """Each message with the threshold (2) of validator signatures, ascending by signer as
    the gateway requires."""
    signers = sorted(VALIDATORS, key=lambda v: v.address.lower())[:2]
    signed = []
    for m in messages:
        digest = attestation_digest(m.id, epoch, beta["chain_id"], beta["gateway"])
        signed.append(SignedMessage(m, [sign_digest(digest, v.private_key) for v in signers]))
    return signed


def deliver_batches(
    rpc: Rpc, doc: dict[str, Any], batch: int, total: int, first_nonce: int, kick: bool
) -> dict[str, Any]:
    """Send `total` messages in batches of `batch`; messages/s from the first send to the
    last receipt, gas per message from the receipts."""
    beta = chain_doc(doc, "beta")
    call = {"to": beta["gateway"], "data": "0x" + keccak(text="epoch()")[:4].hex()}
    epoch = int(rpc.call("eth_call", call, "latest"), 16)
    signed = attest(transfer_messages(doc, first_nonce, total), epoch, beta)
    calls = [delivery_calldata(signed[i : i + batch]) for i in range(0, total, batch)]
    relayer_key = account_key(doc, "relayer")
    relayer = Account.from_key(relayer_key).address
    gas = estimate(rpc, relayer, beta["gateway"], calls[0]) * 5 // 4
    txs = presign(rpc, relayer_key, beta["gateway"], calls, gas, beta["chain_id"])
    start = time.time()
    # a JSON-RPC request of at most ~1 MB: anvil refuses larger bodies
    send_all(rpc, txs, chunk=max(1, min(100, 1_000_000 // len(txs.raw[0]))))
    wait_receipt(rpc, txs.hashes[-1], kick=kick)
    seconds = time.time() - start
    receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in txs.hashes])
    delivered = sum(1 for r in receipts for log in r["logs"] if log["topics"][0] == TOPIC_DELIVERED)
    gas_used = sum(int(r["gasUsed"], 16) for r in receipts)
    per_block: dict[str, int] = {}
    for r in receipts:
        per_block[r["blockNumber"]] = per_block.get(r["blockNumber"], 0) + batch
    return {
        "batch": batch,
        "messages": total,
        "delivered": delivered,
        "reverted_txs": sum(1 for r in receipts if r["status"] != "0x1"),
        "seconds": round(seconds, 3),
        "messages_per_s": rate(delivered, seconds),
        "gas_per_message": round(gas_used / total),
        "blocks": len({r["blockNumber"] for r in receipts}),
        "most_messages_in_a_block": max(per_block.values()),
    }


def bridge_out_rate(rpc: Rpc, doc: dict[str, Any], n: int, kick: bool) -> dict[str, Any]:
    """How fast alpha takes `n` pre-signed bridgeOut transactions."""
    alpha = chain_doc(doc, "alpha")
    approve_bridge(rpc, doc, "alpha", 10**30)
    calls = bridge_out_calls(doc, "alpha", "beta", n, 1)
    user = Account.from_key(account_key(doc, "user")).address
    gas = estimate(rpc, user, alpha["bridge"], calls[0]) * 5 // 4
    txs = presign(rpc, account_key(doc, "user"), alpha["bridge"], calls, gas, alpha["chain_id"])
    start = time.time()
    accepted = send_all(rpc, txs)
    receipt = wait_receipt(rpc, txs.hashes[-1], kick=kick)
    included = time.time() - start
    return {
        "transactions": n,
        "accepted_per_s": rate(n, accepted[-1] - start),
        "included_per_s": rate(n, included),
        "last_status": receipt["status"],
    }


def run(result: Result, budget: Budget, work: Path, quick: bool) -> None:
    """Both block modes: automine (instant) and 1-second blocks."""
    for mode, block_time in (("instant", None), ("1s", 1.0)):
        # 1-second blocks need enough messages to fill several blocks for a rate to mean much
        per_size = (400 if quick else 2_000) * (1 if block_time is None else 2)
        devnet = start_devnet(work / f"raw-{mode}", block_time)
        try:
            doc = devnet.to_json()
            rpc = Rpc(chain_doc(doc, "beta")["rpc_url"])
            for i, batch in enumerate((1, 10, 50, 200)):
                if budget.expired():
                    result.partial(f"time ran out before {mode} batch {batch}")
                    return
                total = per_size // 2 if batch == 1 else per_size
                got = deliver_batches(rpc, doc, batch, total, 10**12 * (i + 1), block_time is None)
                result.figures[f"deliver_{mode}_batch_{batch}"] = got
                result.row(
                    f"raw deliverBatch, {mode} blocks, batch {batch}",
                    f"{got['messages_per_s']:,.0f} msg/s, {got['gas_per_message']:,} gas/msg",
                )
            src = Rpc(chain_doc(doc, "alpha")["rpc_url"])
            got = bridge_out_rate(src, doc, per_size, block_time is None)
            result.figures[f"bridge_out_{mode}"] = got
            result.row(
                f"raw bridgeOut at the source, {mode} blocks",
                f"{got['accepted_per_s']:,.0f} tx/s accepted, "
                f"{got['included_per_s']:,.0f} tx/s included",
            )
        finally:
            devnet.stop()
