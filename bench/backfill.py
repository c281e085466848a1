"""Backfill: a chain holding many messages joins, and the hub reads them all.

The hub relays only what a chain sends after it joined (its cursor starts at the head at
registration), so ingestion is measured as scanning: alpha is filled with `n` Inbox.post
messages in full blocks (automine off, ~700 MessageSent per 30M-gas block), the chains are
registered, alpha's cursor is set back to the block before the first of them, and the relay
worker and beat (no validators: only the scan is measured) are started. Messages ingested
per second = rows in `messages` from alpha / seconds from the workers' start (boot included)
to the last row; the steady rate leaves the boot out (first row to last)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy import text
from web3 import Web3

from adapters.evm.devnet import contract
from bench.chain import MAX_FEE, TIP, Rpc, account_key, chain_doc, start_devnet
from bench.result import Budget, Result, rate
from bench.stack import Distributed, distributed
from hub.db.engine import make_engine

POST_GAS = 45_000  # Inbox.post with a short payload uses ~42,700
BLOCK_GAS = 30_000_000


def fill(rpc: Rpc, doc: dict[str, Any], n: int) -> tuple[int, int]:
    """`n` Inbox.post transactions from the user, as many per block as fit; anvil signs them
    (eth_sendTransaction from its unlocked dev account: signing 100,000 in Python would be
    most of the set-up time). Returns the first and last block holding them."""
    alpha, beta = chain_doc(doc, "alpha"), chain_doc(doc, "beta")
    inbox = contract(Web3(), "Inbox", alpha["inbox"])
    user = Account.from_key(account_key(doc, "user")).address
    nonce = int(rpc.call("eth_getTransactionCount", user, "pending"), 16)
    per_block = BLOCK_GAS // POST_GAS
    rpc.call("evm_setAutomine", False)
    first = rpc.block_number() + 1
    try:
        for start in range(0, n, per_block):
            calls = []
            for i in range(start, min(n, start + per_block)):
                data = inbox.encode_abi("post", [beta["chain_id"], beta["inbox"], f"b{i}".encode()])
                tx = {
                    "from": user,
                    "to": alpha["inbox"],
                    "data": HexBytes(data).to_0x_hex(),
                    "gas": hex(POST_GAS),
                    "maxFeePerGas": hex(MAX_FEE),
                    "maxPriorityFeePerGas": hex(TIP),
                    "nonce": hex(nonce + i),
                }
                calls.append(("eth_sendTransaction", [tx]))
            rpc.batch(calls)
            mine_at_base_fee(rpc)
        while int(rpc.call("eth_getTransactionCount", user, "latest"), 16) < nonce + n:
            mine_at_base_fee(rpc)
    finally:
        rpc.call("evm_setAutomine", True)
    return first, rpc.block_number()


def mine_at_base_fee(rpc: Rpc) -> None:
    """A block at a 1 gwei base fee: full blocks raise the next one's by 1/8 each, which
    would price the fill out of the fee cap after a few dozen blocks."""
    rpc.call("anvil_setNextBlockBaseFeePerGas", hex(10**9))
    rpc.call("evm_mine")


def rewind(db_url: str, chain_name: str, block: int, block_hash: str) -> None:
    """Set the chain's cursor (and its start) back to `block`, as if it joined there."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE cursors SET start_block = :b, block_number = :b, block_hash = :h, "
                "final_block = :b, final_hash = :h "
                "WHERE chain_key = (SELECT id FROM chains WHERE name = :name)"
            ),
            {"b": block, "h": block_hash, "name": chain_name},
        )
    engine.dispose()


def count_messages(db_url: str, chain_id: int) -> int:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM messages WHERE src_chain_id = :c"), {"c": chain_id}
        ).scalar_one()
    engine.dispose()
    return int(n)


def run(result: Result, budget: Budget, work: Path, n: int) -> None:
    devnet = start_devnet(work / "backfill", None)
    try:
        doc = devnet.to_json()
        for chain in doc["chains"]:
            chain["finality"] = 0
        alpha = chain_doc(doc, "alpha")
        rpc = Rpc(alpha["rpc_url"])
        began = time.time()
        first, last = fill(rpc, doc, n)
        result.figures["fill_seconds"] = round(time.time() - began, 1)
        result.figures["blocks"] = last - first + 1
        before = rpc.call("eth_getBlockByNumber", hex(first - 1), False)["hash"]
        with distributed(doc, work / "backfill") as hub:
            rewind(hub.db_url, "alpha", first - 1, before)
            ingest(result, budget, hub, alpha["chain_id"], n)
    finally:
        devnet.stop()


def ingest(result: Result, budget: Budget, hub: Distributed, chain_id: int, n: int) -> None:
    start = time.time()
    hub.start_relay()
    hub.start_beat()
    seen, first_row_at, last_change = 0, 0.0, start
    while not budget.expired():
        count = count_messages(hub.db_url, chain_id)
        now = time.time()
        if count and not first_row_at:
            first_row_at = now
        if count != seen:
            seen, last_change = count, now
        if seen >= n:
            break
        time.sleep(0.5)
    if seen < n:
        result.partial(f"timed out: {seen} of {n} messages ingested")
    result.figures.update(
        {
            "messages": n,
            "ingested": seen,
            "ingested_per_s": rate(seen, last_change - start),
            "steady_per_s": rate(seen, last_change - first_row_at) if first_row_at else 0.0,
            "seconds": round(last_change - start, 1),
        }
    )
    result.row(
        f"backfill of {n:,} messages: ingested",
        f"{result.figures['ingested_per_s']:,} /s from the workers' start "
        f"({result.figures['steady_per_s']:,} /s from the first row; {seen:,} of {n:,})",
    )
