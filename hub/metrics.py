"""Prometheus metrics: what each hub process counts, and what the database says (and the log
event of each committed state change).

Two kinds, one `/metrics` page per process that serves them:
- process metrics, updated by the process that does the work: state changes it committed,
  delivery transactions, attestations, relay latency, RPC calls, step durations and errors,
  chain heads, relayer balances, rate-limit headroom, supplies. Where one service is several
  processes (a Celery prefork worker, `uvicorn --workers N`), they use prometheus_client's
  multiprocess mode: each process writes its values to files in PROMETHEUS_MULTIPROC_DIR and
  the one exporter of that service adds them up.
- registry metrics, read from the database at each scrape of the API: messages by state and
  route, the age of the oldest message in each waiting state, cursors, pauses, open alerts.

What a transaction changed is counted only once it commits (SQLAlchemy session events), so
the counters of all processes together agree with the database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client import multiprocess as mp
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.values import ValueClass
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.util import identity_key

from adapters.base import observe_rpc
from hub.db.models import (
    Alert,
    Asset,
    Attestation,
    Chain,
    Cursor,
    Delivery,
    Message,
    MessageEvent,
    Route,
    utcnow,
)
from hub.domain.states import OPEN_DELIVERY_TX, MessageState

# Each committed state change, one event a line with its message id (hub.logs writes JSON).
state_log = logging.getLogger("hub.messages")

# -- process metrics ----------------------------------------------------------------------

TRANSITIONS = Counter(
    "islands_message_transitions",
    "Messages that entered a state, committed by this process",
    ["state"],
)
RELAY_LATENCY = Histogram(
    "islands_relay_latency_seconds",
    "From the hub recording a message (its source block scanned) to its delivery",
    ["src", "dst"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)
DELIVERY_TXS = Counter(
    "islands_delivery_transactions",
    "Delivery transactions: sent (signed and recorded, replacements too), replaced, mined, "
    "reverted, dropped",
    ["chain", "outcome"],
)
ATTESTATIONS_RECORDED = Counter(
    "islands_attestations_recorded",
    "Validator signatures stored by this process (checked against the current set)",
    ["validator"],
)
ATTESTATIONS_SIGNED = Counter(
    "islands_attestations_signed",
    "Signatures this validator process made and handed to the hub",
    ["validator"],
)
ALERTS_RAISED = Counter("islands_alerts_raised", "Alerts raised, by kind", ["kind"])
REORGS = Counter("islands_reorgs", "Reorgs the scan saw, shallow or deep", ["chain", "depth"])
RPC_CALLS = Counter(
    "islands_rpc_requests",
    "RPC calls on one endpoint, by outcome (ok, error, reverted, refused)",
    ["endpoint", "outcome"],
)
RPC_SECONDS = Histogram(
    "islands_rpc_request_seconds",
    "Time of one RPC call on one endpoint",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STEP_SECONDS = Histogram(
    "islands_step_seconds",
    "Time of one relay step (scan, attest, deliver, confirm, guardian, supply)",
    ["step"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STEP_ERRORS = Counter("islands_step_errors", "Relay steps that failed or crashed", ["step"])
HTTP_REQUESTS = Counter(
    "islands_http_requests", "API requests, by route and status", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "islands_http_request_seconds",
    "API request time (to the start of the response)",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def _latest(name: str, doc: str, labels: list[str]) -> Gauge:
    """A gauge whose value is the last one any process of the service set."""
    return Gauge(name, doc, labels, multiprocess_mode="mostrecent")


CHAIN_HEAD = _latest("islands_chain_head_block", "The chain's head, as the scan read it", ["chain"])
CHAIN_FINAL = _latest(
    "islands_chain_final_block",
    "The chain's final block by its policy, as the scan read it",
    ["chain"],
)
CURSOR_LAG = _latest(
    "islands_chain_cursor_lag_blocks", "Blocks between the chain's head and the scan", ["chain"]
)
FINALITY_LAG = _latest(
    "islands_chain_finality_lag_blocks", "Blocks between the head and the final block", ["chain"]
)
RELAYER_BALANCE = _latest(
    "islands_relayer_balance_wei", "The relayer's native balance on a chain", ["chain", "relayer"]
)
RATE_LIMIT_AVAILABLE = _latest(
    "islands_rate_limit_available",
    "What a bridge's rate limit lets pass now (base units), per chain, remote chain, asset and "
    "direction",
    ["chain", "remote", "asset", "direction"],
)
RATE_LIMIT_CAPACITY = _latest(
    "islands_rate_limit_capacity",
    "A bridge's rate-limit capacity (base units)",
    ["chain", "remote", "asset", "direction"],
)
SUPPLY_LOCKED = _latest(
    "islands_supply_locked", "Locked at home (base units), at the settled block", ["asset"]
)
SUPPLY_WRAPPED = _latest(
    "islands_supply_wrapped", "Wrapped supply on a chain (base units)", ["asset", "chain"]
)
SUPPLY_IN_FLIGHT = _latest("islands_supply_in_flight", "In flight (base units)", ["asset"])
SUPPLY_SURPLUS = _latest(
    "islands_supply_surplus",
    "Locked minus wrapped minus in flight: 0 balanced, above a surplus, below a deficit",
    ["asset"],
)
SUPPLY_BALANCED = _latest(
    "islands_supply_balanced", "1 balanced, 0 not, -1 unknown (a chain not read)", ["asset"]
)


def multiprocess() -> bool:
    """Whether this process writes its values to PROMETHEUS_MULTIPROC_DIR."""
    return bool(getattr(ValueClass, "_multiprocess", False))


# -- counting what a transaction committed ------------------------------------------------

_PENDING = "islands.metrics.pending"
_TX_OUTCOMES = {
    "superseded": "replaced",
    "mined": "mined",
    "reverted": "reverted",
    "dropped": "dropped",
}
_chain_names: dict[int, str] = {}
_installed = False


def install() -> None:
    """Count committed state changes and RPC calls in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - once per process
    if _installed:
        return
    # Before the flush: the rows a flush writes are all in hand (after it, the session keeps
    # only weak references to rows it wrote).
    event.listen(Session, "before_flush", _collect)
    event.listen(Session, "after_commit", _publish)
    event.listen(Session, "after_rollback", _drop)
    observe_rpc(_rpc)
    _installed = True


def _collect(session: Session, _context: Any, _instances: Any = None) -> None:
    pending: list[Callable[[], None]] = session.info.setdefault(_PENDING, [])
    for obj in session.new:
        if isinstance(obj, MessageEvent):
            pending.extend(_entered(session, obj))
        elif isinstance(obj, Delivery):
            pending.append(DELIVERY_TXS.labels(_name(session, obj.dst_chain_id), "sent").inc)
        elif isinstance(obj, Attestation):
            pending.append(ATTESTATIONS_RECORDED.labels(obj.validator).inc)
        elif isinstance(obj, Alert):
            pending.append(ALERTS_RAISED.labels(obj.kind).inc)
    for obj in session.dirty:
        if isinstance(obj, Delivery):
            added = inspect(obj).attrs.status.history.added
            outcome = _TX_OUTCOMES.get(str(added[0])) if added else None
            if outcome is not None:
                chain = _name(session, obj.dst_chain_id)
                pending.append(DELIVERY_TXS.labels(chain, outcome).inc)


def _entered(session: Session, entry: MessageEvent) -> list[Callable[[], None]]:
    counter = TRANSITIONS.labels(entry.state)
    fields = {"message_id": _message_id(entry), "state": entry.state, "detail": entry.detail}
    found: list[Callable[[], None]] = [counter.inc, lambda: state_log.info("state", extra=fields)]
    if entry.state != MessageState.DELIVERED:
        return found
    row = _route_and_birth(session, entry.message_id)
    if row is not None:
        src_chain_id, dst_chain_id, created_at = row
        at: datetime = entry.at or utcnow()
        seconds = max(0.0, (at - _aware(created_at)).total_seconds())
        src, dst = _name(session, src_chain_id), _name(session, dst_chain_id)
        histogram = RELAY_LATENCY.labels(src, dst)
        found.append(lambda: histogram.observe(seconds))
    return found


def _message_id(entry: MessageEvent) -> str | None:
    """The event's message id; a new message's first event knows only its message object
    until the flush (read from memory: no query inside a flush)."""
    if entry.message_id is not None:
        return entry.message_id
    message = entry.__dict__.get("message")
    return message.id if isinstance(message, Message) else None


def _route_and_birth(session: Session, message_id: str) -> tuple[int, int, datetime] | None:
    """The message's chains and when the hub recorded it (the session may no longer hold
    the row: it keeps rows it already wrote only weakly)."""
    message = session.identity_map.get(identity_key(Message, message_id))
    if isinstance(message, Message):
        return message.src_chain_id, message.dst_chain_id, message.created_at
    query = select(Message.src_chain_id, Message.dst_chain_id, Message.created_at).where(
        Message.id == message_id
    )
    row = session.connection().execute(query).first()
    return None if row is None else (int(row[0]), int(row[1]), row[2])


def _name(session: Session, chain_id: int) -> str:
    """A chain's name for a label (names never change; read once per process)."""
    if chain_id not in _chain_names:
        rows = session.connection().execute(select(Chain.chain_id, Chain.name))
        _chain_names.update({int(cid): str(name) for cid, name in rows})
    return _chain_names.get(chain_id, str(chain_id))


def _publish(session: Session) -> None:
    for apply in session.info.pop(_PENDING, ()):
        apply()


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def endpoint_label(url: str) -> str:
    """scheme://host:port only: a provider key may sit in the path, query or user part."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def _rpc(url: str, seconds: float, outcome: str) -> None:
    label = endpoint_label(url)
    RPC_CALLS.labels(label, outcome).inc()
    RPC_SECONDS.labels(label).observe(seconds)


# -- what the database says ---------------------------------------------------------------

WAITING = [
    s.value
    for s in (
        MessageState.OBSERVED,
        MessageState.FINALIZED,
        MessageState.ATTESTED,
        MessageState.SUBMITTED,
        MessageState.FAILED,
    )
]


class RegistryCollector(Collector):
    """Read at each scrape: the database is the truth, whichever process moved what."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            names = {int(c): str(n) for c, n in session.execute(select(Chain.chain_id, Chain.name))}
            yield _messages(session, names)
            yield _oldest(session)
            yield from _chains(session)
            yield _routes(session)
            yield _assets(session)
            yield _alerts(session)
            yield _open_deliveries(session, names)


def _messages(session: Session, names: dict[int, str]) -> Metric:
    family = GaugeMetricFamily(
        "islands_messages", "Messages by state and route", labels=["state", "src", "dst"]
    )
    query = select(
        Message.state, Message.src_chain_id, Message.dst_chain_id, func.count()
    ).group_by(Message.state, Message.src_chain_id, Message.dst_chain_id)
    for state, src, dst, count in session.execute(query):
        src_name, dst_name = names.get(src, str(src)), names.get(dst, str(dst))
        family.add_metric([state, src_name, dst_name], count)
    return family


def _oldest(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "islands_oldest_message_age_seconds",
        "Seconds since the hub recorded the oldest message now in each waiting state",
        labels=["state"],
    )
    now, found = utcnow(), {}
    query = (
        select(Message.state, func.min(Message.created_at))
        .where(Message.state.in_(WAITING))
        .group_by(Message.state)
    )
    for state, oldest in session.execute(query):
        found[state.value] = oldest
    for waiting in WAITING:
        at = found.get(waiting)
        age = 0.0 if at is None else (now - _aware(at)).total_seconds()
        family.add_metric([waiting], max(0.0, age))
    return family


def _aware(value: datetime) -> datetime:
    # func.min bypasses the column type, so SQLite returns a naive (UTC) datetime or text.
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def _chains(session: Session) -> Iterable[Metric]:
    status = GaugeMetricFamily(
        "islands_chain_status", "1 for the chain's status", labels=["chain", "status"]
    )
    cursor = GaugeMetricFamily(
        "islands_chain_cursor_block", "Gateway logs read up to this block", labels=["chain"]
    )
    settled = GaugeMetricFamily(
        "islands_chain_settled_block",
        "Every message at or below this block is final or orphaned",
        labels=["chain"],
    )
    query = select(Chain, Cursor).outerjoin(Cursor, Cursor.chain_key == Chain.id)
    for chain, row in session.execute(query):
        status.add_metric([chain.name, chain.status], 1)
        if row is not None:
            cursor.add_metric([chain.name], row.block_number)
            settled.add_metric([chain.name], row.settled_block)
    return [status, cursor, settled]


def _routes(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "islands_route_paused", "1 when the route is paused", labels=["src", "dst"]
    )
    for route in session.scalars(select(Route)):
        family.add_metric([route.src.name, route.dst.name], int(route.status != "active"))
    return family


def _assets(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "islands_asset_paused", "1 when the asset is paused", labels=["asset"]
    )
    for asset in session.scalars(select(Asset)):
        family.add_metric([asset.symbol], int(asset.status != "active"))
    return family


def _alerts(session: Session) -> Metric:
    family = GaugeMetricFamily("islands_alerts_open", "Unresolved alerts", labels=["kind"])
    query = select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.kind)
    for kind, count in session.execute(query):
        family.add_metric([kind], count)
    return family


def _open_deliveries(session: Session, names: dict[int, str]) -> Metric:
    family = GaugeMetricFamily(
        "islands_deliveries_pending",
        "Delivery transactions sent and not mined yet",
        labels=["chain"],
    )
    query = (
        select(Delivery.dst_chain_id, func.count())
        .where(Delivery.status.in_(OPEN_DELIVERY_TX))
        .group_by(Delivery.dst_chain_id)
    )
    for chain_id, count in session.execute(query):
        family.add_metric([names.get(chain_id, str(chain_id))], count)
    return family


# -- exposition ---------------------------------------------------------------------------


class _ThisProcess(Collector):
    """The process metrics of this process (the default registry), for another registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def process_registry() -> CollectorRegistry:
    """This service's process metrics: added up over its processes in multiprocess mode."""
    registry = CollectorRegistry()
    if multiprocess():
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    return registry


def api_registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    """What the API serves at /metrics: its process metrics and the registry's."""
    registry = process_registry()
    registry.register(RegistryCollector(sessions))
    return registry


def serve(port: int, host: str = "127.0.0.1") -> None:
    """A /metrics HTTP server in a thread of this process (a worker's main process)."""
    start_http_server(port, addr=host, registry=process_registry())


def prepare_multiprocess_dir() -> None:
    """Start a service's metrics from zero: a dead run's files would be added up too. Call in
    the service's first process, before it forks its children."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def process_exited(pid: int) -> None:
    """A child is gone: its live gauges go; its counters stay (they happened)."""
    if multiprocess():
        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]
