"""The chains a benchmark runs on: anvil devnets on free ports, raw JSON-RPC, pre-signed
transactions, and a watcher that sees deliveries land on the destination chain.

Everything here talks to anvil directly (no hub code in the measured path), so what it
measures is the chain, or the hub as a user sees it from the chain."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3

from adapters.evm.devnet import Devnet, contract, up
from adapters.evm.nodes import DevnetError, port_free

TOPIC_SENT = (
    "0x" + keccak(text="MessageSent(bytes32,uint64,address,uint64,address,uint64,bytes)").hex()
)
TOPIC_DELIVERED = "0x" + keccak(text="MessageDelivered(bytes32,uint64,uint64)").hex()
TOPIC_FAILED = "0x" + keccak(text="MessageFailed(bytes32,uint64,bytes)").hex()
MAX_FEE = 50 * 10**9  # far above anvil's base fee, so no pre-signed transaction is underpriced
TIP = 10**6
SEND_CHUNK = 100  # raw transactions per JSON-RPC batch


class RpcError(RuntimeError):
    """A JSON-RPC call answered with an error."""


class Rpc:
    """A keep-alive JSON-RPC client for one node; batches in one HTTP request."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout)
        self._id = 0

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def batch(
        self,
        calls: Sequence[tuple[str, list[Any]]],
        strict: bool = True,
        timeout: float | None = None,
    ) -> list[Any]:
        """Results in the order of `calls`; RpcError on the first error (None in its place
        when not `strict`). `timeout`: this request's, if not the client's."""
        body = []
        for method, params in calls:
            self._id += 1
            body.append({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        wait = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        answers = self._http.post(self.url, json=body, timeout=wait).json()
        by_id = {a["id"]: a for a in answers}
        results = []
        for request in body:
            answer = by_id[request["id"]]
            if "error" in answer and strict:
                raise RpcError(f"{request['method']}: {answer['error']}")
            results.append(answer.get("result"))
        return results

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def logs(self, address: str, topic: str, from_block: int, to_block: int) -> list[Any]:
        query = {
            "address": address,
            "topics": [topic],
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
        }
        return list(self.call("eth_getLogs", query))


def free_base_port(count: int) -> int:
    for _ in range(200):
        base = random.randrange(20_000, 60_000 - count)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports")


def start_devnet(state_dir: Path, block_time: float | None, chains: int = 2) -> Devnet:
    """A devnet of `chains` chains on free ports (retried when another process takes one);
    `block_time` None is automine: a block per transaction, the chain's own fastest."""
    last: Exception | None = None
    for _ in range(5):
        try:
            return up(chains, free_base_port(chains), state_dir, block_time=block_time)
        except DevnetError as exc:
            if "already in use" not in str(exc):
                raise
            last = exc
    raise RuntimeError(f"could not start a devnet on free ports: {last}")


def chain_doc(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(next(c for c in doc["chains"] if c["name"] == name))


def account_key(doc: dict[str, Any], role: str, index: int = 0) -> str:
    keys = [a["private_key"] for a in doc["accounts"] if a["role"] == role]
    return str(keys[index])


@dataclass
class Presigned:
    """Signed raw transactions from one account, in nonce order, and their hashes."""

    raw: list[str]
    hashes: list[str]


def presign(
    rpc: Rpc, key: str, to: str, calldata: Sequence[bytes], gas: int, chain_id: int
) -> Presigned:
    """Sign one EIP-1559 transaction per calldata, nonces following the account's pending
    nonce. Fees are fixed well above the base fee, so none waits for a cheaper block."""
    account = Account.from_key(key)
    nonce = int(rpc.call("eth_getTransactionCount", account.address, "pending"), 16)
    raw, hashes = [], []
    for i, data in enumerate(calldata):
        tx = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce + i,
            "to": Web3.to_checksum_address(to),
            "data": HexBytes(data),
            "gas": gas,
            "maxFeePerGas": MAX_FEE,
            "maxPriorityFeePerGas": TIP,
            "value": 0,
        }
        signed = Account.sign_transaction(tx, key)
        raw.append(signed.raw_transaction.to_0x_hex())
        hashes.append(signed.hash.to_0x_hex())
    return Presigned(raw, hashes)


def send_all(rpc: Rpc, txs: Presigned, chunk: int = SEND_CHUNK) -> list[float]:
    """Send the transactions as fast as the node accepts them, `chunk` per JSON-RPC batch;
    returns the wall-clock time each was accepted (the batch's answer). A batch the node
    does not answer within SEND_TIMEOUT is left to `all_mined`, which sends again what is
    not mined (anvil under a flood has left a batch unanswered for over a minute)."""
    accepted: list[float] = []
    for start in range(0, len(txs.raw), chunk):
        part = txs.raw[start : start + chunk]
        with suppress(httpx.TimeoutException):
            rpc.batch([("eth_sendRawTransaction", [r]) for r in part], timeout=SEND_TIMEOUT)
        accepted.extend([time.time()] * len(part))
    return accepted


SEND_TIMEOUT = 10.0


def all_mined(rpc: Rpc, txs: Presigned, timeout: float = 300.0) -> int:
    """Wait until every transaction is in a block; returns how many had to be sent again.
    anvil (1.7) under a flood of raw transactions from one account sometimes stops mining
    them: they stay in its pool, neither pending nor mined, and sending them again is refused
    as "already imported". Then its pool is emptied (anvil_dropAllTransactions; the bench
    sends nothing else to the source) and the ones without a receipt are sent again, in
    nonce order."""
    deadline = time.monotonic() + timeout
    resent = 0
    while True:
        try:
            wait_receipt(rpc, txs.hashes[-1], timeout=min(15.0, deadline - time.monotonic()))
            return resent
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
        missing = _unmined(rpc, txs)
        rpc.call("anvil_dropAllTransactions")
        for start in range(0, len(missing), SEND_CHUNK):
            part = missing[start : start + SEND_CHUNK]
            rpc.batch([("eth_sendRawTransaction", [r]) for r in part], strict=False)
        resent += len(missing)


def _unmined(rpc: Rpc, txs: Presigned, chunk: int = 500) -> list[str]:
    """The raw transactions without a receipt, in nonce order (receipts asked in batches)."""
    missing = []
    for start in range(0, len(txs.hashes), chunk):
        hashes = txs.hashes[start : start + chunk]
        receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        raws = txs.raw[start : start + chunk]
        missing += [raw for raw, got in zip(raws, receipts, strict=True) if got is None]
    return missing


def send_paced(
    rpc: Rpc, txs: Presigned, per_second: float, stop: Callable[[], bool]
) -> list[float]:
    """One transaction every 1/per_second seconds (on a fixed schedule, not drifting)."""
    accepted: list[float] = []
    begin = time.monotonic()
    for i, raw in enumerate(txs.raw):
        if stop():
            break
        delay = begin + i / per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        rpc.call("eth_sendRawTransaction", raw)
        accepted.append(time.time())
    return accepted


def wait_receipt(
    rpc: Rpc, tx_hash: str, timeout: float = 120.0, kick: bool = False
) -> dict[str, Any]:
    """The receipt, once the transaction is in a block. With `kick` (automine chains), mine
    a block when it is late: automine makes one block per request, and transactions that did
    not fit in it wait in the pool until the next transaction arrives."""
    deadline = time.monotonic() + timeout
    asked = time.monotonic()
    while time.monotonic() < deadline:
        receipt = rpc.call("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return dict(receipt)
        if kick and time.monotonic() - asked > 0.2:
            rpc.call("evm_mine")
        time.sleep(0.02)
    raise TimeoutError(f"no receipt for {tx_hash} in {timeout:g} s")


def sent_ids(rpc: Rpc, gateway: str, from_block: int) -> dict[str, str]:
    """{source tx hash: message id} for every MessageSent of `gateway` from `from_block`."""
    found: dict[str, str] = {}
    head = rpc.block_number()
    step = 5_000
    for start in range(from_block, head + 1, step):
        for entry in rpc.logs(gateway, TOPIC_SENT, start, min(head, start + step - 1)):
            found[entry["transactionHash"]] = entry["topics"][1]
    return found


@dataclass
class Watcher:
    """Polls the destination gateway's MessageDelivered / MessageFailed logs and stamps each
    id with the wall-clock time it was first seen (every `every` seconds: that is the error
    of each latency)."""

    rpc: Rpc
    gateway: str
    from_block: int
    every: float = 0.1
    delivered: dict[str, float] = field(default_factory=dict)
    failed: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        cursor = self.from_block
        while not self._stop.is_set():
            # the chain may be busy; the next poll reads the same range again
            with suppress(httpx.HTTPError, RpcError):
                cursor = self._poll(cursor)
            self._stop.wait(self.every)

    def _poll(self, cursor: int) -> int:
        head = self.rpc.block_number()
        if head < cursor:
            return cursor
        query = {
            "address": self.gateway,
            "topics": [[TOPIC_DELIVERED, TOPIC_FAILED]],
            "fromBlock": hex(cursor),
            "toBlock": hex(head),
        }
        now = time.time()
        for entry in self.rpc.call("eth_getLogs", query):
            seen = self.delivered if entry["topics"][0] == TOPIC_DELIVERED else self.failed
            seen.setdefault(entry["topics"][1], now)
        return head + 1

    def landed(self, ids: set[str]) -> int:
        return len(ids & (self.delivered.keys() | self.failed.keys()))


@contextmanager
def watching(rpc: Rpc, gateway: str) -> Iterator[Watcher]:
    watcher = Watcher(Rpc(rpc.url), gateway, rpc.block_number()).start()
    try:
        yield watcher
    finally:
        watcher.stop()
        watcher.rpc.close()


def bridge_out_calls(doc: dict[str, Any], src: str, dst: str, n: int, amount: int) -> list[bytes]:
    """`TokenBridge.bridgeOut` calldata of the devnet's user, `n` times (ITT home tokens)."""
    w3 = Web3()
    source, target = chain_doc(doc, src), chain_doc(doc, dst)
    bridge = contract(w3, "TokenBridge", source["bridge"])
    user = Account.from_key(account_key(doc, "user")).address
    token = doc["asset"]["home_token"]
    data = bridge.encode_abi("bridgeOut", [token, target["chain_id"], user, amount])
    return [bytes(HexBytes(data))] * n


def inbox_post_calls(doc: dict[str, Any], src: str, dst: str, n: int) -> list[bytes]:
    """`Inbox.post` calldata, `n` different payloads."""
    w3 = Web3()
    source, target = chain_doc(doc, src), chain_doc(doc, dst)
    inbox = contract(w3, "Inbox", source["inbox"])
    return [
        bytes(
            HexBytes(
                inbox.encode_abi("post", [target["chain_id"], target["inbox"], f"m{i}".encode()])
            )
        )
        for i in range(n)
    ]


def approve_bridge(rpc: Rpc, doc: dict[str, Any], src: str, amount: int) -> None:
    """Let the source bridge take `amount` of the user's home ITT (one transaction)."""
    w3 = Web3()
    source = chain_doc(doc, src)
    token = contract(w3, "TestToken", doc["asset"]["home_token"])
    data = bytes(HexBytes(token.encode_abi("approve", [source["bridge"], amount])))
    txs = presign(rpc, account_key(doc, "user"), token.address, [data], 100_000, source["chain_id"])
    send_all(rpc, txs)
    wait_receipt(rpc, txs.hashes[0])


def estimate(rpc: Rpc, sender: str, to: str, data: bytes) -> int:
    call = {"from": sender, "to": to, "data": "0x" + data.hex()}
    return int(rpc.call("eth_estimateGas", call), 16)


class Kicker(threading.Thread):
    """Keeps automine chains mining: anvil's automine makes a block per request, and what
    did not fit in it waits in the pool until another transaction arrives (thousands sent at
    once were left there for good). Every `every` seconds, a chain with pending
    transactions gets a block (evm_mine), as a chain with instant blocks would make one."""

    def __init__(self, urls: Sequence[str], every: float = 0.1) -> None:
        super().__init__(name="kicker", daemon=True)
        self.clients = [Rpc(url) for url in urls]
        self.every = every
        self.kicks = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            for client in self.clients:
                with suppress(httpx.HTTPError, RpcError, KeyError, TypeError):
                    if int(client.call("txpool_status")["pending"], 16) > 0:
                        client.call("evm_mine")
                        self.kicks += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        for client in self.clients:
            client.close()


@contextmanager
def kicking(urls: Sequence[str]) -> Iterator[Kicker]:
    kicker = Kicker(urls)
    kicker.start()
    try:
        yield kicker
    finally:
        kicker.stop()
