"""The fault stack, the steady stream of transfers, and the checks a user would make.

- `FaultStack`: the distributed hub as real processes (API, relay worker, three validators,
  beat) on a private Postgres and a private Redis, each chain registered with two RPC URLs
  (a fault-injecting proxy first, the node itself second). Any part can be killed and
  started again; the hub's processes can run under a shifted clock (libfaketime).
- `Stream`: transfers sent steadily with `TokenBridge.bridgeOut` between the chains, from a
  thread, recording what was sent and when.
- `Watcher`: reads every gateway's `MessageDelivered` logs from the chains themselves, noting
  when each id was first seen delivered.
- `settle`: waits until the stream is delivered and the supply is at rest, and checks what
  a user would: each transfer delivered exactly once on-chain, balances on-chain equal to
  what the hub's records say moved, the supply check balanced. Returns the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from sqlalchemy import text
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from hub.db.engine import make_engine
from tests.conftest import ROOT
from tests.faults.services import PrivatePostgres, PrivateRedis
from tests.integration.relay.chain import Sender, balance, contract, token_of, w3
from tests.integration.relay.stack import Stack, wait_for
from tests.integration.rpcproxy import RpcProxy

Chain = dict[str, Any]
ITT = 10**18
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@dataclass
class FaultStack(Stack):
    """The relay stack of tests.integration.relay.stack, on private services, with a
    restartable API and the hub's processes optionally under a shifted clock."""

    pg: PrivatePostgres | None = None
    broker: PrivateRedis | None = None
    proxies: dict[str, RpcProxy] = field(default_factory=dict)
    api_port: int = 0
    clock_file: Path | None = None  # libfaketime offset ("+0", "-1h"), read by every process
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = super().env(**self.extra_env, **extra)
        if self.clock_file is not None:
            env.update(
                LD_PRELOAD=str(LIBFAKETIME),
                FAKETIME_TIMESTAMP_FILE=str(self.clock_file),
                FAKETIME_CACHE_DURATION="1",
                # libfaketime moves the monotonic clock too (sleeps fail with EINVAL when it
                # is told not to), so a test moves the clock back only across a restart.
            )
        return env

    def spawn(self, name: str, args: list[str], **extra_env: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        log.write(f"\n==== {name} started at {time.strftime('%X')}\n".encode())
        log.flush()
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def celery(self, name: str, args: list[str], **extra_env: str) -> None:
        self.spawn(name, ["celery", "-A", "relayers", *args], **extra_env)

    def start_api(self) -> None:
        self.spawn("api", ["uvicorn", "hub.api.main:app", "--port", str(self.api_port)])
        wait_for("the API up", self._api_up, timeout=60, every=0.2)

    def _api_up(self) -> bool:
        if self.procs["api"].poll() is not None:
            raise RuntimeError(f"the API exited: see {self.log_dir / 'api.log'}")
        try:
            return httpx.get(f"{self.api}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_relay_worker(self, name: str = "relay") -> None:
        args = ["worker", "-Q", "relay,deliver", "-c", "2", "-n", f"{name}-{time.time_ns()}@%h"]
        args += ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
        self.celery(name, args, HUB_RELAYER_KEY=self.key("relayer"))

    def start_validators(self, only: str | None = None) -> None:
        config = str(self.validator_config())
        for i in range(3):
            name = f"validator-{i + 1}"
            if only not in (None, name):
                continue
            args = ["worker", "-Q", name, "-c", "1", "--pool", "solo", "-n", f"{name}@%h"]
            args += ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
            self.celery(
                name,
                args,
                HUB_VALIDATOR_KEY=self.key("validator", i),
                HUB_VALIDATOR_CONFIG=config,
            )

    def start_all(self) -> None:
        """Every process; the workers first, as they take longest to be ready."""
        self.start_validators()
        self.start_relay_worker()
        self.start_beat()
        self.start_api()

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def get(self, path: str, **params: Any) -> Any:
        """Read the API, waiting out a restart (a fault may have just killed it)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(self.api + path, params=params, timeout=30)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response.json()
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the API did not answer GET {path}")
            time.sleep(0.5)

    def patch(self, path: str, body: dict[str, Any], token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.patch(self.api + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.post(self.api + path, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def kill_group(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal one of our processes and its children (a prefork worker's pool too)."""
        self.kill(name, sig)

    def stop(self) -> None:
        super().stop()


# -- the stream --------------------------------------------------------------------------


@dataclass
class Sent:
    src: str
    dst: str
    amount: int
    tx_hash: str
    at: float  # time.monotonic() when it was sent
    message_id: str | None = None
    outcome: str = "unknown"  # "sent" (mined), "reverted", "dropped" (gone from the chain)


DIRECTIONS = [
    ("alpha", "beta"),
    ("beta", "gamma"),
    ("gamma", "alpha"),
    ("alpha", "gamma"),
    ("gamma", "beta"),
    ("beta", "alpha"),
]


class Stream:
    """Transfers from the devnet user, round-robin over `directions`, `rate` a second."""

    def __init__(
        self,
        stack: FaultStack,
        chains: dict[str, Chain],
        rate: float = 2.0,
        directions: list[tuple[str, str]] | None = None,
    ) -> None:
        self.stack, self.chains, self.rate = stack, chains, rate
        self.directions = list(directions or DIRECTIONS)
        self.sent: list[Sent] = []
        self.errors: list[str] = []
        self._senders = {name: Sender(chain, stack.key("user")) for name, chain in chains.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="stream")
        self._lock = threading.Lock()
        self._n = 0

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def pause_sending_to(self, *names: str) -> None:
        with self._lock:
            self.directions = [d for d in self.directions if d[1] not in names]

    def only(self, directions: list[tuple[str, str]]) -> None:
        with self._lock:
            self.directions = list(directions)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            with self._lock:
                directions = list(self.directions)
            if directions:
                src, dst = directions[self._n % len(directions)]
                self._n += 1
                self._send_one(src, dst)
            self._stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def _send_one(self, src: str, dst: str) -> None:
        sender = self._senders[src]
        amount = ITT // 1000 + random.randrange(1, 10**9)
        chain = self.chains[src]
        bridge = contract(chain, "TokenBridge", chain["bridge"])
        call = bridge.functions.bridgeOut(
            token_of(self.stack.doc, chain), self.chains[dst]["chain_id"], sender.address, amount
        )
        try:
            tx_hash = sender.send(call, gas=400_000)
        except Exception as exc:  # a node refusing (e.g. a nonce a reorg took back): resync
            self.errors.append(f"{src}->{dst}: {type(exc).__name__}: {exc}"[:300])
            sender.nonce = sender.web3.eth.get_transaction_count(sender.address, "pending")
            return
        self.sent.append(Sent(src, dst, amount, tx_hash, time.monotonic()))

    def recheck(self, name: str) -> None:
        """After a reorg of chain `name`: transfers whose transaction is gone are dropped."""
        web3 = w3(self.chains[name]["rpc_url"])
        for item in list(self.sent):
            if item.src == name and item.outcome == "sent":
                try:
                    web3.eth.get_transaction_receipt(item.tx_hash)  # type: ignore[arg-type]
                except TransactionNotFound:
                    item.outcome = "dropped"

    def resync(self, name: str) -> None:
        """Take the user's nonce from the chain again (a reorg took transactions back)."""
        sender = self._senders[name]
        sender.nonce = sender.web3.eth.get_transaction_count(sender.address, "pending")

    def resolve(self) -> list[Sent]:
        """Each transfer's outcome on its source chain, and its message id from the logs."""
        for item in list(self.sent):
            if item.outcome != "unknown":
                continue
            chain = self.chains[item.src]
            try:
                receipt = w3(chain["rpc_url"]).eth.wait_for_transaction_receipt(
                    item.tx_hash, timeout=20
                )
            except Exception:
                item.outcome = "dropped"
                continue
            if receipt["status"] != 1:
                item.outcome = "reverted"
                continue
            gateway = contract(chain, "Gateway", chain["gateway"])
            sent = gateway.events.MessageSent().process_receipt(receipt, errors=DISCARD)
            item.message_id = "0x" + bytes(sent[0]["args"]["id"]).hex()
            item.outcome = "sent"
        return self.sent


def prepare_user(stack: FaultStack, chains: dict[str, Chain]) -> None:
    """The user approves the home bridge once and holds wrapped ITT on every chain, so the
    stream can send in every direction."""
    alpha = chains["alpha"]
    sender = Sender(alpha, stack.key("user"))
    token = contract(alpha, "TestToken", token_of(stack.doc, alpha))
    sender.wait(sender.send(token.functions.approve(alpha["bridge"], 2**255)))
    sender.wait(sender.send(token.functions.mint(sender.address, 10_000 * ITT)))


# -- the watcher -------------------------------------------------------------------------


class Watcher:
    """When each message id was first seen delivered, read from the chains every 0.3 s."""

    def __init__(self, chains: dict[str, Chain]) -> None:
        self.chains = chains
        self.first_seen: dict[str, float] = {}
        self.deliveries: dict[str, list[tuple[str, str]]] = defaultdict(list)  # id -> (chain, tx)
        self._next = {name: w3(c["rpc_url"]).eth.block_number + 1 for name, c in chains.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watcher")

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self.chains:
                with contextlib.suppress(Exception):  # a chain that did not answer now
                    self._poll(name)  # answers next time
            self._stop.wait(0.3)

    def _poll(self, name: str) -> None:
        chain = self.chains[name]
        head = w3(chain["rpc_url"]).eth.block_number
        start = self._next[name]
        if head < start:
            return
        gateway = contract(chain, "Gateway", chain["gateway"])
        logs = gateway.events.MessageDelivered().get_logs(from_block=start, to_block=head)
        now = time.monotonic()
        for log in logs:
            mid = "0x" + bytes(log["args"]["id"]).hex()
            self.first_seen.setdefault(mid, now)
        self._next[name] = head + 1

    def recount(self, from_blocks: dict[str, int]) -> Counter[str]:
        """MessageDelivered per id on the canonical chains now (after any reorg)."""
        counts: Counter[str] = Counter()
        self.deliveries.clear()
        for name, chain in self.chains.items():
            gateway = contract(chain, "Gateway", chain["gateway"])
            logs = gateway.events.MessageDelivered().get_logs(
                from_block=from_blocks[name], to_block="latest"
            )
            for log in logs:
                mid = "0x" + bytes(log["args"]["id"]).hex()
                counts[mid] += 1
                self.deliveries[mid].append((name, "0x" + bytes(log["transactionHash"]).hex()))
        return counts


# -- checks and figures ------------------------------------------------------------------


@dataclass
class Figures:
    fault: str
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    dropped_by_chain: int = 0  # sent, then removed from the source chain by a reorg
    outage_s: float = 0.0  # how long the fault lasted
    recovery_s: float = 0.0  # from its end until every transfer sent before it was delivered
    worst_latency_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    load: float = field(default_factory=lambda: round(os.getloadavg()[0], 1))  # the machine's

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class Fault:
    """When a fault started and when it ended (time.monotonic())."""

    name: str
    started: float = 0.0
    ended: float = 0.0

    def __enter__(self) -> Fault:
        self.started = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.ended = time.monotonic()


class Run:
    """One stream with one fault or several one after another: snapshot at rest, stream,
    faults, settle, check, and figures for each fault (the transfers sent from the end of
    the one before it to its own end, or to the end of the stream for the last)."""

    def __init__(self, stack: FaultStack, chains: dict[str, Chain], name: str = "") -> None:
        self.stack, self.chains, self.name = stack, chains, name
        check_supply_at_rest(stack, timeout=120)  # the figures start from a stack at rest
        self.who = Sender(chains["alpha"], stack.key("user")).address
        self.balances = {n: balance(stack.doc, c, self.who) for n, c in chains.items()}
        self.blocks = {n: w3(c["rpc_url"]).eth.block_number + 1 for n, c in chains.items()}
        self.watcher = Watcher(chains).__enter__()
        self.faults: list[Fault] = []

    def fault(self, name: str = "") -> Fault:
        """`with run.fault("name"):` around the injection marks when it started and ended."""
        self.faults.append(Fault(name or self.name))
        return self.faults[-1]

    def caught_up(self, stream: Stream, timeout: float = 120) -> None:
        """Wait until every transfer sent before the last fault ended is delivered, so the
        next fault's figures start clean."""
        end = self.faults[-1].ended
        ids = {s.message_id for s in stream.resolve() if s.outcome == "sent" and s.at <= end}
        wait_for(
            f"the stream caught up after {self.faults[-1].name}",
            lambda: ids <= set(self.watcher.first_seen),
            timeout=timeout,
            every=0.3,
        )

    def settle(self, stream: Stream, timeout: float = 120) -> list[Figures]:
        """Wait for every transfer of the stream to be delivered, then check it all."""
        stream.stop()
        sent = [s for s in stream.resolve() if s.outcome == "sent"]
        ids = {s.message_id for s in sent}

        def all_delivered() -> bool:
            return ids <= set(self.watcher.first_seen)

        try:
            wait_for(f"{len(ids)} transfers delivered", all_delivered, timeout=timeout, every=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; not delivered: {self._where(ids)}") from None
        finally:
            self.watcher.__exit__()
        counts = self.watcher.recount(self.blocks)
        lost = [s for s in sent if counts[str(s.message_id)] != 1]
        assert not lost, (
            f"delivered other than once: {[(s, counts[str(s.message_id)]) for s in lost]}"
        )
        figures = [self._figures(stream, sent, counts, i) for i in range(len(self.faults))]
        self._check_records(sent)
        check_supply_at_rest(self.stack)
        check_nothing_half_written(self.stack.db_url)
        return figures

    def _where(self, ids: set[Any]) -> list[tuple[str, str, str | None]]:
        """What the hub says of each transfer the chains have not delivered."""
        missing = sorted(str(i) for i in ids - set(self.watcher.first_seen))
        found = [self.stack.get(f"/v1/messages/{i}") for i in missing]
        return [(m["id"][:10], m["state"], m.get("last_error")) for m in found]

    def _figures(
        self, stream: Stream, sent: list[Sent], counts: Counter[str], index: int
    ) -> Figures:
        fault, seen = self.faults[index], self.watcher.first_seen
        since = self.faults[index - 1].ended if index else float("-inf")
        until = fault.ended if index < len(self.faults) - 1 else float("inf")
        mine = [s for s in sent if since < s.at <= until]
        f = Figures(fault.name, sent=len(mine))
        f.delivered = sum(1 for s in mine if counts[str(s.message_id)] >= 1)
        f.lost = sum(1 for s in mine if counts[str(s.message_id)] == 0)
        f.duplicated = sum(1 for s in mine if counts[str(s.message_id)] > 1)
        f.dropped_by_chain = sum(
            1 for s in stream.sent if s.outcome == "dropped" and since < s.at <= until
        )
        f.outage_s = round(fault.ended - fault.started, 1)
        before = [seen[str(s.message_id)] for s in mine if s.at <= fault.ended]
        f.recovery_s = round(max(0.0, max(before, default=fault.ended) - fault.ended), 1)
        latencies = [seen[str(s.message_id)] - s.at for s in mine]
        f.worst_latency_s = round(max(latencies, default=0), 1)
        return f

    def _check_records(self, sent: list[Sent]) -> None:
        """The hub's records agree with the chains: each transfer delivered in the very
        transaction whose log the chain shows, and the user's balances moved by exactly what
        the hub's transfer records say."""
        expected = dict(self.balances)

        def hub_caught_up() -> list[str]:
            """The transfers the hub does not show delivered yet (it reads the chains a
            moment after the watcher here)."""
            return [
                str(s.message_id)
                for s in sent
                if self.stack.get(f"/v1/transfers/{s.message_id}")["state"] != "delivered"
            ]

        wait_for("the hub to record every delivery", lambda: not hub_caught_up(), timeout=60)
        for s in sent:
            record = self.stack.get(f"/v1/transfers/{s.message_id}")
            assert record["amount"] == str(s.amount)
            chain, tx = self.watcher.deliveries[str(s.message_id)][0]
            assert (record["dst_chain"], record["dst_tx_hash"]) == (chain, tx), record
            expected[record["src_chain"]] -= int(record["amount"])
            expected[record["dst_chain"]] += int(record["amount"])
        actual = {n: balance(self.stack.doc, c, self.who) for n, c in self.chains.items()}
        assert actual == expected, f"balances on-chain {actual} != hub records {expected}"


def check_nothing_half_written(db_url: str) -> None:
    """In the hub's database itself: every message is in the state its timeline ends with,
    and every delivered one names its delivery (a step cut in the middle would leave one
    without the other)."""
    checks = {
        "state differs from the timeline's last step": """
            SELECT m.id, m.state, e.state FROM messages m
            JOIN LATERAL (SELECT state FROM message_events WHERE message_id = m.id
                          ORDER BY id DESC LIMIT 1) e ON true
            WHERE e.state <> m.state""",
        "delivered without its transaction": """
            SELECT id FROM messages WHERE state = 'delivered'
            AND (dst_tx_hash IS NULL OR dst_block_number IS NULL)""",
    }
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for what, sql in checks.items():
                rows = conn.execute(text(sql)).all()
                assert not rows, f"{what}: {rows[:5]}"
    finally:
        engine.dispose()


def spend_a_nonce(chain: Chain, key: str) -> str:
    """A transaction from `key` at its next mined nonce, with a fee above the hub's cap: it
    replaces whatever the hub has pending at that nonce, as another relayer would."""
    web3 = w3(chain["rpc_url"])
    account = Account.from_key(key)
    tx = {
        "to": account.address,
        "value": 0,
        "gas": 21_000,
        "nonce": web3.eth.get_transaction_count(account.address, "latest"),
        "chainId": chain["chain_id"],
        "maxFeePerGas": 20 * 10**9,
        "maxPriorityFeePerGas": 10 * 10**9,
    }
    signed = account.sign_transaction(tx)
    return "0x" + web3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")


def check_supply_at_rest(stack: FaultStack, timeout: float = 60) -> dict[str, Any]:
    """GET /v1/assets/ITT: nothing in flight, no surplus, balanced, the asset active."""

    def at_rest() -> Any:
        asset = stack.get("/v1/assets/ITT")
        s = asset["supply"]
        ok = s["in_flight"] == "0" and s["surplus"] == "0" and s["balanced"] is True
        return asset if ok else None

    asset = wait_for("the supply at rest and balanced", at_rest, timeout=timeout, every=0.5)
    assert asset["status"] == "active", asset
    return dict(asset)


# `make reliability` sets ISLANDS_FAULT_FIGURES=1: each fault of a test then waits until
# the stream caught up with the fault before it (clean figures, a slower run), and the
# figures are written. In `make test` the faults of one test follow each other closely.
FIGURES = os.environ.get("ISLANDS_FAULT_FIGURES") == "1"


def record(results_dir: Path, figures: Figures) -> None:
    """Keep a test's figures where scripts/reliability_table.py reads them (figures runs)."""
    if not FIGURES:
        return
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{figures.fault}.json"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    path.write_text(json.dumps({**figures.as_json(), "commit": commit}, indent=2) + "\n")


def results_dir() -> Path:
    return Path(os.environ.get("ISLANDS_FAULT_RESULTS", ROOT / "results" / "faults"))
