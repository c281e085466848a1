"""Prometheus metrics from every process of the distributed hub, scraped with
prometheus_client's parser and checked against the database: what the processes counted
adds up to what the database holds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from adapters.evm.demo import bridge, send_message
from tests.integration.operators.conftest import Ops, user_key
from tests.integration.relay.stack import wait_for

ITT = 10**18
WAITING = ("observed", "finalized", "attested", "submitted", "failed")
DB_WRITERS = ("api", "relay", "validator-1")  # the outside validator writes nothing


def scrape(url: str) -> list[Sample]:
    text = httpx.get(url, timeout=10).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def by_label(samples: Iterable[Sample], name: str, label: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for s in samples:
        if s.name == name:
            found[s.labels[label]] += int(s.value)
    return found


def cursors(ops: Ops) -> dict[str, int]:
    query = "SELECT c.name, k.block_number FROM cursors k JOIN chains c ON c.id = k.chain_key"
    return {str(name): int(block) for name, block in ops.sql(query)}


def quiet(ops: Ops) -> bool:
    waiting = ops.sql(
        "SELECT count(*) FROM messages WHERE state IN ('observed', 'finalized', 'attested', "
        "'submitted', 'failed')"
    )[0][0]
    open_txs = ops.sql("SELECT count(*) FROM deliveries WHERE status IN ('pending', 'superseded')")
    return waiting == 0 and open_txs[0][0] == 0


def test_metrics_of_every_process_add_up_to_the_database(ops: Ops) -> None:
    client = ops.client()
    sent = [
        bridge(ops.doc, "alpha", "beta", 1 * ITT, user_key(ops)),
        bridge(ops.doc, "alpha", "gamma", 2 * ITT, user_key(ops)),
        send_message(ops.doc, "beta", "gamma", b"hello metrics", user_key(ops)),
    ]
    for item in sent:
        assert client.wait_for(item.message_id, timeout=90).state == "delivered"
    wait_for("no message waiting and no delivery open", lambda: quiet(ops), timeout=60)

    cursors_before = cursors(ops)  # chains keep making blocks: the scans go on meanwhile
    scraped = {name: scrape(url) for name, url in ops.metrics.items()}
    cursors_after = cursors(ops)
    api, relay = scraped["api"], scraped["relay"]

    # The API reads the registry: messages by state and route, as the database has them.
    rows = ops.sql(
        "SELECT m.state, s.name, d.name, count(*) FROM messages m "
        "JOIN chains s ON s.chain_id = m.src_chain_id JOIN chains d ON d.chain_id = m.dst_chain_id "
        "GROUP BY 1, 2, 3"
    )
    assert rows
    for state, src, dst, count in rows:
        assert total(api, "islands_messages", state=state, src=src, dst=dst) == count
    assert total(api, "islands_messages") == sum(r[3] for r in rows)
    for state in WAITING:
        assert total(api, "islands_oldest_message_age_seconds", state=state) == 0

    # Every state change the database records was counted by the process that committed it.
    events = dict(ops.sql("SELECT state, count(*) FROM message_events GROUP BY state"))
    counted: Counter[str] = Counter()
    for name in DB_WRITERS:
        counted += by_label(scraped[name], "islands_message_transitions_total", "state")
    assert dict(counted) == events

    # Each delivered message's latency was observed once.
    delivered = events["delivered"]
    latency = sum(total(scraped[n], "islands_relay_latency_seconds_count") for n in DB_WRITERS)
    assert latency == delivered >= 3

    # Delivery transactions: every row sent, and every one mined.
    txs = dict(ops.sql("SELECT status, count(*) FROM deliveries GROUP BY status"))
    assert total(relay, "islands_delivery_transactions_total", outcome="sent") == sum(txs.values())
    assert total(relay, "islands_delivery_transactions_total", outcome="mined") == txs["mined"]

    # Signatures: each validator made exactly the ones the hub stored for it.
    stored = dict(ops.sql("SELECT validator, count(*) FROM attestations GROUP BY validator"))
    v1, v2 = ops.account("validator", 0)["address"], ops.account("validator", 1)["address"]
    signed_v1 = total(scraped["validator-1"], "islands_attestations_signed_total", validator=v1)
    assert signed_v1 == stored[v1]
    signed_v2 = total(scraped["validator-2"], "islands_attestations_signed_total", validator=v2)
    assert signed_v2 == stored[v2]
    recorded: Counter[str] = Counter()
    for name in DB_WRITERS:
        recorded += by_label(scraped[name], "islands_attestations_recorded_total", "validator")
    assert dict(recorded) == stored

    # Chains: the cursors as the database had them, and heads as the scans last read them
    # (a scan commits its cursor a moment before it reports the head it read).
    for chain, before in cursors_before.items():
        assert (
            before <= total(api, "islands_chain_cursor_block", chain=chain) <= cursors_after[chain]
        )
        head = total(relay, "islands_chain_head_block", chain=chain)
        assert before - 200 <= head <= cursors_after[chain] + 200, (chain, head)
        assert 0 <= total(relay, "islands_chain_cursor_lag_blocks", chain=chain) <= 200
    # The supply watch: ITT balanced, every chain read.
    assert total(relay, "islands_supply_balanced", asset="ITT") == 1
    assert total(relay, "islands_supply_surplus", asset="ITT") == 0
    # RPC calls per endpoint (host and port only), from the workers and the outside validator.
    for name in ("relay", "validator-1", "validator-2"):
        endpoints = {
            s.labels["endpoint"] for s in scraped[name] if s.name == "islands_rpc_requests_total"
        }
        assert {f"http://127.0.0.1:{c['port']}" for c in ops.doc["chains"]} <= endpoints, name
    # Relayer balances per chain.
    relayer = ops.account("relayer")["address"]
    for chain in cursors_before:
        assert total(relay, "islands_relayer_balance_wei", chain=chain, relayer=relayer) > 0
    assert total(relay, "islands_step_seconds_count", step="deliver") > 0


def test_the_prefork_worker_adds_up_its_processes(ops: Ops) -> None:
    """The relay worker runs two pool processes; each writes its own files (multiprocess
    mode) and the worker's /metrics adds them up."""
    files = [p.name for p in ops.multiproc_dir.glob("counter_*.db")]
    pids = {name.removeprefix("counter_").removesuffix(".db") for name in files}
    assert len(pids) >= 2, files
    relay = scrape(ops.metrics["relay"])
    steps = total(relay, "islands_step_seconds_count")
    assert steps > 0
    assert all(s.labels.get("pid") is None for s in relay if s.name.endswith("_total"))


def json_events(path: Path) -> list[dict[str, Any]]:
    """The JSON events of a process's log (Celery's own banner lines are not the hub's)."""
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_logs_are_json_events_carrying_the_message_id(ops: Ops) -> None:
    sent = send_message(ops.doc, "gamma", "beta", b"hello logs", user_key(ops))
    assert ops.client().wait_for(sent.message_id, timeout=90).state == "delivered"
    logs = ops.stack.log_dir
    relay = json_events(logs / "relay.log")
    ours = [e for e in relay if e.get("message_id") == sent.message_id and e["event"] == "state"]
    assert {e["state"] for e in ours} >= {"observed", "finalized", "submitted", "delivered"}
    assert all({"ts", "level", "logger"} <= set(e) for e in ours)
    sent_events = [e for e in relay if e["event"] == "delivery sent"]
    assert any(sent.message_id in e["message_ids"] for e in sent_events)
    # The API: the outside validator's signature, posted over HTTP, logged with the message id.
    api = json_events(logs / "api.log")
    posts = [e for e in api if e["event"] == "request" and e.get("message_id") == sent.message_id]
    assert any(
        e["route"] == "/v1/messages/{message_id}/attestations" and e["status"] == 201 for e in posts
    )
    validator = json_events(logs / "validator-2.log")
    assert any(e["event"] == "attested" and e["message_id"] == sent.message_id for e in validator)
