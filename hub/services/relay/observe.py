"""Metrics from what each relay step reports: its time, chain heads and lags, reorgs, the
supply check, signatures made; and, at most every SAMPLE_SECONDS, the reads a step does not
make itself (relayer balances, rate-limit headroom)."""

from __future__ import annotations

import logging
import time

from eth_account import Account
from sqlalchemy import select

from adapters.base import AdapterError, BridgeOperator
from hub import metrics as m
from hub.db.models import Asset, Chain, RouteLimit
from hub.services.relay.context import RelayContext
from hub.services.relay.guardian import local_token
from hub.services.relay.ports import Ports
from hub.services.relay.scan import ScanReport
from hub.services.relay.supply import SupplyCheck
from hub.services.relay.validator import AttestReport

log = logging.getLogger("hub.relay.observe")
SAMPLE_SECONDS = 10.0
_sampled: dict[str, float] = {}
_addresses: dict[str, str] = {}


def step_failed(what: str) -> None:
    m.STEP_ERRORS.labels(what).inc()


def step_done(
    what: str, ctx: RelayContext, ports: Ports, target: str, result: object, seconds: float
) -> None:
    """Called after every stage that did not raise (the runner, for the Celery tasks and the
    embedded loop alike); observing never breaks a stage. Chains are read through the
    stage's own ports."""
    try:
        _observe(what, ctx, ports, target, result, seconds)
    except Exception:  # a metric is not worth a step: logged, and the step's result stands
        log.exception("observing a step failed", extra={"step": what})


def _observe(
    what: str, ctx: RelayContext, ports: Ports, target: str, result: object, seconds: float
) -> None:
    m.STEP_SECONDS.labels(what).observe(seconds)
    if isinstance(result, ScanReport):
        _scanned(result)
    elif isinstance(result, SupplyCheck):
        _supply(result)
    elif isinstance(result, AttestReport) and result.signed:
        m.ATTESTATIONS_SIGNED.labels(result.validator).inc(result.signed)
    if what == "deliver" and ports.relayer_key is not None and _due(f"balance:{target}"):
        _balance(ctx, ports, target, ports.relayer_key)
    if what == "supply" and _due(f"limits:{target}"):
        _headroom(ctx, ports, target)


def _due(key: str) -> bool:
    now = time.monotonic()
    if now - _sampled.get(key, 0.0) < SAMPLE_SECONDS:
        return False
    _sampled[key] = now
    return True


def _scanned(report: ScanReport) -> None:
    chain = report.chain
    if report.reorg:
        m.REORGS.labels(chain, "deep" if report.deep_reorg else "shallow").inc()
    if report.head is None:
        return
    m.CHAIN_HEAD.labels(chain).set(report.head)
    if report.final_block is not None:
        m.CHAIN_FINAL.labels(chain).set(report.final_block)
        m.FINALITY_LAG.labels(chain).set(max(0, report.head - report.final_block))
    if report.cursor_block is not None:
        m.CURSOR_LAG.labels(chain).set(max(0, report.head - report.cursor_block))


def _supply(check: SupplyCheck) -> None:
    asset = check.symbol
    if check.locked is not None:
        m.SUPPLY_LOCKED.labels(asset).set(check.locked)
    for chain, amount in check.wrapped.items():
        if amount is not None:
            m.SUPPLY_WRAPPED.labels(asset, chain).set(amount)
    m.SUPPLY_IN_FLIGHT.labels(asset).set(check.in_flight)
    balanced = check.balanced
    m.SUPPLY_BALANCED.labels(asset).set(-1 if balanced is None else int(balanced))
    if balanced is not None:
        m.SUPPLY_SURPLUS.labels(asset).set(check.surplus)


def _address(key: str) -> str:
    """The relayer's address (the key itself is never kept here, only what it derives)."""
    if key not in _addresses:
        _addresses[key] = str(Account.from_key(key).address)
    return _addresses[key]


def _balance(ctx: RelayContext, ports: Ports, chain_name: str, key: str) -> None:
    relayer = _address(key)
    with ctx.transaction() as session:
        chain = session.scalar(select(Chain).where(Chain.name == chain_name))
        if chain is None:
            return
        adapter = ports.adapter(chain)
    try:
        m.RELAYER_BALANCE.labels(chain_name, relayer).set(adapter.native_balance(relayer))
    except AdapterError as exc:
        log.info("balance not read", extra={"chain": chain_name, "error": str(exc)})


def _headroom(ctx: RelayContext, ports: Ports, symbol: str) -> None:
    """Each rate limit of the asset as both bridges hold it now."""
    with ctx.transaction() as session:
        asset = session.scalar(select(Asset).where(Asset.symbol == symbol))
        if asset is None:
            return
        rows = list(session.scalars(select(RouteLimit).where(RouteLimit.asset_id == asset.id)))
        reads = [_buckets(ports, row, asset) for row in rows]
    for found in reads:
        for labels, capacity, available in found:
            m.RATE_LIMIT_CAPACITY.labels(*labels).set(capacity)
            m.RATE_LIMIT_AVAILABLE.labels(*labels).set(available)


def _buckets(
    ports: Ports, row: RouteLimit, asset: Asset
) -> list[tuple[tuple[str, str, str, str], int, int]]:
    route, found = row.route, []
    for chain, remote, outbound in ((route.src, route.dst, True), (route.dst, route.src, False)):
        token = local_token(asset, chain)
        adapter = ports.adapter(chain)
        if token is None or not isinstance(adapter, BridgeOperator):
            continue
        try:
            state = adapter.rate_limit(chain.bridge_address, remote.chain_id, token, outbound)
        except AdapterError as exc:
            log.info("rate limit not read", extra={"chain": chain.name, "error": str(exc)})
            continue
        if state.limit.limited:
            direction = "outbound" if outbound else "inbound"
            labels = (chain.name, remote.name, asset.symbol, direction)
            found.append((labels, state.limit.capacity, state.available))
    return found
