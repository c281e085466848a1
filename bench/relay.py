"""The hub relaying transfers from alpha to beta, measured from the chains: each transfer's
source transaction (the time the node accepted it) to its MessageDelivered (or
MessageFailed) log on the destination (the time the watcher first saw it, polled every
0.1 s).

Scenarios: streamed (distributed form, instant or 1-second blocks; embedded form), drain,
low load, burst with downtime. Each runs on a devnet of its own (anvil, two chains), a fresh
database and Redis db. Instant blocks are anvil's automine; with them the chains are
registered at finality depth 0 (automine makes no block without a transaction, so a deeper
finality would never reach the last message). 1-second blocks keep the devnet's depth 2, as
`make run` has it."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profile as spy
from bench.chain import (
    Presigned,
    Rpc,
    Watcher,
    account_key,
    all_mined,
    approve_bridge,
    bridge_out_calls,
    chain_doc,
    estimate,
    inbox_post_calls,
    kicking,
    presign,
    send_all,
    send_paced,
    sent_ids,
    start_devnet,
    wait_receipt,
    watching,
)
from bench.result import Budget, Result, percentiles, rate
from bench.stack import Distributed, Sampler, children, distributed, embedded, roles_of

SRC, DST = "alpha", "beta"
AMOUNT = 10**12  # per transfer: 5,000 of them are far below the user's 1,000 ITT


@dataclass
class Run:
    """One measured flow of messages: what was sent, when, and what landed."""

    txs: Presigned
    accepted: list[float]
    start: float
    ids: dict[str, str]  # source tx hash -> message id
    watcher: Watcher
    send_start: float = 0.0  # when sending began, if not at `start` (drain)

    def landed_at(self) -> dict[str, float]:
        """{source tx hash: time its message landed}, for what has landed."""
        out = {}
        for tx_hash, message_id in self.ids.items():
            seen = self.watcher.delivered.get(message_id) or self.watcher.failed.get(message_id)
            if seen is not None:
                out[tx_hash] = seen
        return out


def wait_until(what: str, check: Callable[[], bool], budget: Budget, cap: float) -> bool:
    deadline = min(time.monotonic() + cap, budget.deadline)
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def prepare_transfers(doc: dict[str, Any], n: int) -> Presigned:
    """Approve once, then sign `n` bridgeOut transactions of the user (off the clock)."""
    src = chain_doc(doc, SRC)
    rpc = Rpc(src["rpc_url"])
    approve_bridge(rpc, doc, SRC, 10**30)
    calls = bridge_out_calls(doc, SRC, DST, n, AMOUNT)
    user_key = account_key(doc, "user")
    from eth_account import Account

    user = Account.from_key(user_key).address
    gas = estimate(rpc, user, src["bridge"], calls[0]) * 5 // 4
    return presign(rpc, user_key, src["bridge"], calls, gas, src["chain_id"])


def prepare_posts(doc: dict[str, Any], n: int) -> Presigned:
    src = chain_doc(doc, SRC)
    rpc = Rpc(src["rpc_url"])
    calls = inbox_post_calls(doc, SRC, DST, n)
    return presign(rpc, account_key(doc, "user"), src["inbox"], calls, 150_000, src["chain_id"])


def sent(
    rpc: Rpc, doc: dict[str, Any], txs: Presigned, from_block: int, result: Result
) -> dict[str, str]:
    """Once every sent transaction is in a block: {tx hash: message id} of ours."""
    resent = all_mined(rpc, txs)
    if resent:
        result.notes.append(f"the source dropped transactions it had accepted: {resent} resent")
    found = sent_ids(rpc, chain_doc(doc, SRC)["gateway"], from_block)
    return {h: found[h] for h in txs.hashes if h in found}


def wait_landed(run: Run, budget: Budget, result: Result) -> None:
    ids = set(run.ids.values())
    if not wait_until("deliveries", lambda: run.watcher.landed(ids) >= len(ids), budget, 1e9):
        result.partial(
            f"timed out: {run.watcher.landed(ids)} of {len(ids)} landed within the budget"
        )


def summarize(result: Result, label: str, run: Run, usage: dict[str, Any]) -> dict[str, Any]:
    """Throughput from the first source transaction to the last delivery, latencies, and
    what each process cost; rows for the table."""
    landed = run.landed_at()
    accepted = dict(zip(run.txs.hashes, run.accepted, strict=False))
    latencies = [landed[h] - accepted[h] for h in landed]
    last = max(landed.values(), default=time.time())
    failed = len(set(run.ids.values()) & run.watcher.failed.keys())
    figures: dict[str, Any] = {
        "sent": len(run.accepted),
        "landed": len(landed),
        "failed": failed,
        "source_accepted_per_s": rate(
            len(run.accepted), run.accepted[-1] - (run.send_start or run.start)
        ),
        "throughput_per_s": rate(len(landed), last - run.start),
        "first_tx_to_last_delivery_s": round(last - run.start, 2),
        "latency_s": percentiles(latencies),
        "processes": usage,
    }
    result.figures[label] = figures
    lat = figures["latency_s"]
    result.row(
        f"{label}: throughput",
        f"{figures['throughput_per_s']:,} /s ({len(landed)} of {len(run.accepted)} landed"
        + (f", {failed} failed" if failed else "")
        + f"; source took {figures['source_accepted_per_s']:,} /s)",
    )
    if lat:
        result.row(
            f"{label}: latency p50 / p95 / p99",
            f"{lat['p50']:.2f} / {lat['p95']:.2f} / {lat['p99']:.2f} s",
        )
    for role, cost in usage.items():
        result.row(
            f"{label}: {role}",
            f"{cost['peak_rss_mb']:,.0f} MB peak RSS, {cost['cpu_seconds']:,.1f} CPU s",
        )
    return figures


def stage_times(db_url: str, run: Run, since: float | None = None) -> dict[str, dict[str, float]]:
    """When each message entered each state, seconds after its source transaction was
    accepted, or after `since` (percentiles per state): where the wall time of a run goes."""
    from sqlalchemy import text

    from hub.db.engine import make_engine

    accepted = dict(zip(run.txs.hashes, run.accepted, strict=False))
    sent_at = {mid: since or accepted[h] for h, mid in run.ids.items() if h in accepted}
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT message_id, state, min(at) FROM message_events GROUP BY 1, 2")
        ).all()
    engine.dispose()
    per_state: dict[str, list[float]] = {}
    for message_id, state, at in rows:
        if message_id in sent_at:
            per_state.setdefault(str(state), []).append(at.timestamp() - sent_at[message_id])
    return {state: percentiles(times) for state, times in per_state.items()}


def stage_row(result: Result, label: str, stages: dict[str, Any], after: str) -> None:
    result.row(
        f"{label}: state entered, p50 / max s after {after}",
        ", ".join(f"{k} {v['p50']:.2f} / {v['max']:.2f}" for k, v in stages.items()),
    )


def devnet_for(work: Path, name: str, block_time: float | None, stack: ExitStack) -> Any:
    devnet = start_devnet(work / name, block_time)
    stack.callback(devnet.stop)
    doc = devnet.to_json()
    if block_time is None:
        for chain in doc["chains"]:
            chain["finality"] = 0
        stack.enter_context(kicking([c["rpc_url"] for c in doc["chains"]]))
    return doc, {f"anvil-{c.name}": c.node.pid for c in devnet.chains if c.node is not None}


def ready(hub: Distributed, budget: Budget, result: Result) -> None:
    if not wait_until("first scan", lambda: hub.scanned() >= 2, budget, 120):
        result.partial("the workers did not scan both chains within 120 s")


def streamed(
    result: Result,
    budget: Budget,
    work: Path,
    n: int,
    block_time: float | None,
    profile: bool = False,
) -> None:
    """The distributed form: n transfers sent as fast as the source accepts them; with
    `profile`, py-spy records every hub process meanwhile."""
    mode = "instant" if block_time is None else f"{block_time:g}s"
    label = f"distributed, {mode} blocks, {n} transfers"
    with ExitStack() as stack:
        doc, anvils = devnet_for(work, f"dist-{mode}", block_time, stack)
        txs = prepare_transfers(doc, n)
        hub = stack.enter_context(distributed(doc, work / f"dist-{mode}"))
        hub.start_workers()
        ready(hub, budget, result)
        sampler = Sampler(roles_of(hub.procs, anvils))
        sampler.start()
        with profiled(profile, hub, work, budget, result):
            run = stream(doc, txs, budget, result, lambda rpc: send_all(rpc, txs), stack)
        figures = summarize(result, label, run, sampler.finish())
        figures["stage_times_s"] = stages = stage_times(hub.db_url, run)
        stage_row(result, label, stages, "the source tx")


@contextmanager
def profiled(
    on: bool, hub: Distributed, work: Path, budget: Budget, result: Result
) -> Iterator[None]:
    """With `on`, py-spy records every hub process while the block runs; its summary goes
    in the result's figures."""
    if not on:
        yield
        return
    roles = roles_of(hub.procs)
    recorders = spy.record(roles, work / "profile", int(budget.left()))
    try:
        yield
    finally:
        spy.finish(recorders)
    result.figures["profile"] = {role: spy.summarize(work / "profile" / role) for role in roles}


def stream(
    doc: dict[str, Any],
    txs: Presigned,
    budget: Budget,
    result: Result,
    send: Callable[[Rpc], list[float]],
    stack: ExitStack,
) -> Run:
    src, dst = Rpc(chain_doc(doc, SRC)["rpc_url"]), Rpc(chain_doc(doc, DST)["rpc_url"])
    watcher = stack.enter_context(watching(dst, chain_doc(doc, DST)["gateway"]))
    from_block = src.block_number() + 1
    start = time.time()
    accepted = send(src)
    run = Run(txs, accepted, start, sent(src, doc, txs, from_block, result), watcher)
    wait_landed(run, budget, result)
    return run


def embedded_streamed(result: Result, budget: Budget, work: Path, n: int) -> None:
    """`islands up` as `make run` starts it (1-second blocks, finality depth 2, SQLite)."""
    label = f"embedded (make run), 1s blocks, {n} transfers"
    with ExitStack() as stack:
        hub, procs = stack.enter_context(embedded(work / "embedded", block_time=1.0))
        pid = procs.procs["embedded"].pid
        anvils = {f"anvil-{i}": child for i, child in enumerate(children(pid))}
        txs = prepare_transfers(hub.doc, n)
        sampler = Sampler({"embedded": pid, **anvils})
        sampler.start()
        run = stream(hub.doc, txs, budget, result, lambda rpc: send_all(rpc, txs), stack)
        summarize(result, label, run, sampler.finish())


def drain(result: Result, budget: Budget, work: Path, n: int, profile: bool = False) -> None:
    """n transfers already on the source when the workers start; throughput from the
    workers' start (their boot included) to the last delivery; with `profile`, py-spy
    records every hub process meanwhile."""
    label = f"drain, instant blocks, {n} transfers"
    with ExitStack() as stack:
        doc, anvils = devnet_for(work, "drain", None, stack)
        txs = prepare_transfers(doc, n)
        hub = stack.enter_context(distributed(doc, work / "drain"))
        src, dst = Rpc(chain_doc(doc, SRC)["rpc_url"]), Rpc(chain_doc(doc, DST)["rpc_url"])
        watcher = stack.enter_context(watching(dst, chain_doc(doc, DST)["gateway"]))
        from_block = src.block_number() + 1
        send_start = time.time()
        accepted = send_all(src, txs)
        ids = sent(src, doc, txs, from_block, result)
        start = time.time()
        hub.start_workers()
        sampler = Sampler(roles_of(hub.procs, anvils))
        sampler.start()
        run = Run(txs, accepted, start, ids, watcher, send_start)
        with profiled(profile, hub, work, budget, result):
            wait_landed(run, budget, result)
        figures = summarize(result, label, run, sampler.finish())
        figures.pop("latency_s", None)
        result.rows = [r for r in result.rows if "latency" not in r.metric]
        figures["stage_times_s"] = stages = stage_times(hub.db_url, run, since=start)
        stage_row(result, label, stages, "the workers started")


def low_load(result: Result, budget: Budget, work: Path, per_second: float, seconds: int) -> None:
    """Transfers at a steady, low rate: latency when nothing queues."""
    n = int(per_second * seconds)
    label = f"low load, instant blocks, {per_second:g}/s for {seconds} s"
    with ExitStack() as stack:
        doc, anvils = devnet_for(work, "low-load", None, stack)
        txs = prepare_transfers(doc, n)
        hub = stack.enter_context(distributed(doc, work / "low-load"))
        hub.start_workers()
        ready(hub, budget, result)
        sampler = Sampler(roles_of(hub.procs, anvils))
        sampler.start()

        def paced(rpc: Rpc) -> list[float]:
            return send_paced(rpc, txs, per_second, budget.expired)

        run = stream(doc, txs, budget, result, paced, stack)
        summarize(result, label, run, sampler.finish())


def one_per_block(rpc: Rpc, txs: Presigned) -> list[float]:
    """Each transaction in a block of its own: the next is sent once the last is in one
    (automine packs transactions that arrive while it mines into one block)."""
    accepted = []
    for raw, tx_hash in zip(txs.raw, txs.hashes, strict=True):
        rpc.call("eth_sendRawTransaction", raw)
        accepted.append(time.time())
        wait_receipt(rpc, tx_hash, kick=True)
    return accepted


def burst(result: Result, budget: Budget, work: Path, first: int, while_down: int) -> None:
    """`first` plain messages (Inbox.post), one per source block; then every worker is
    killed (SIGKILL), `while_down` more are sent, and the workers start again. Every message
    must land: MessageDelivered (or MessageFailed) on the destination, counted per id."""
    label = f"burst {first} + {while_down} while stopped"
    with ExitStack() as stack:
        doc, anvils = devnet_for(work, "burst", None, stack)
        txs = prepare_posts(doc, first + while_down)
        hub = stack.enter_context(distributed(doc, work / "burst"))
        hub.start_workers()
        ready(hub, budget, result)
        sampler = Sampler(roles_of(hub.procs, anvils))
        sampler.start()

        def send(rpc: Rpc) -> list[float]:
            head = Presigned(txs.raw[:first], txs.hashes[:first])
            tail = Presigned(txs.raw[first:], txs.hashes[first:])
            accepted = one_per_block(rpc, head)
            hub.stop_workers(signal.SIGKILL)
            accepted += one_per_block(rpc, tail)
            hub.start_workers()
            for role, pgid in roles_of(hub.procs).items():
                sampler.add(role, pgid)
            return accepted

        run = stream(doc, txs, budget, result, send, stack)
        figures = summarize(result, label, run, sampler.finish())
        src = Rpc(chain_doc(doc, SRC)["rpc_url"])
        receipts = src.batch([("eth_getTransactionReceipt", [h]) for h in txs.hashes[:first]])
        blocks = {r["blockNumber"] for r in receipts if r}
        figures["source_blocks_of_first"] = len(blocks)
        lost = len(run.ids) - figures["landed"]
        figures["not_landed"] = lost
        result.row(f"{label}: not delivered", f"{lost} of {len(run.ids)}", "0 lost")
