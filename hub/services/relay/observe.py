"""Metrics from what each relay step reports: its time, chain heads and lags, reorgs, the
supply check, signatures made; and, at most every SAMPLE_SECONDS, the reads a step does not
make itself (relayer balances, rate-limit headroom)."""

from __future__ import annotations

import logging
import time
from typing import Any

from eth_account import Account
from sqlalchemy import select

from adapters.base import AdapterError, BridgeOperator
from hub import metrics as m
from hub.db.models import Asset, Chain, RouteLimit
from hub.services.relay.context import RelayContext
from hub.services.relay.guardian import local_token
from hub.services.relay.scan import ScanReport
from hub.services.relay.supply import SupplyCheck
from hub.services.relay.validator import Validator

log = logging.getLogger("hub.relay.observe")
SAMPLE_SECONDS = 10.0
_sampled: dict[str, float] = {}
_addresses: dict[str, str] = {}


def step_failed(what: str) -> None:
    m.STEP_ERRORS.labels(what).inc()


def step_done(what: str, args: tuple[Any, ...], result: object, seconds: float) -> None:
    """Called after every step that did not raise (the Celery tasks and the embedded loop);
    observing never breaks a step."""
    try:
        _observe(what, args, result, seconds)
    except Exception:  # a metric is not worth a step: logged, and the step's result stands
        log.exception("observing a step failed", extra={"step": what})


def _observe(what: str, args: tuple[Any, ...], result: object, seconds: float) -> None:
    m.STEP_SECONDS.labels(what).observe(seconds)
    if isinstance(result, ScanReport):
        _scanned(result)
    elif isinstance(result, SupplyCheck):
        _supply(result)
    elif what == "attest" and isinstance(result, int) and len(args) > 1:
        validator = args[1]
        if isinstance(validator, Validator) and result:
            m.ATTESTATIONS_SIGNED.labels(validator.address).inc(result)
    if what == "deliver" and len(args) == 3 and _due(f"balance:{args[1]}"):
        _balance(args[0], args[1], args[2])
    if what == "supply" and len(args) == 2 and _due(f"limits:{args[1]}"):
        _headroom(args[0], args[1])


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


def _balance(ctx: object, chain_name: object, key: object) -> None:
    if not (isinstance(ctx, RelayContext) and isinstance(chain_name, str) and isinstance(key, str)):
        return
    relayer = _address(key)
    with ctx.transaction() as session:
        chain = session.scalar(select(Chain).where(Chain.name == chain_name))
        if chain is None:
            return
        adapter = ctx.adapter(chain)
    try:
        m.RELAYER_BALANCE.labels(chain_name, relayer).set(adapter.native_balance(relayer))
    except AdapterError as exc:
        log.info("balance not read", extra={"chain": chain_name, "error": str(exc)})


def _headroom(ctx: object, symbol: object) -> None:
    """Each rate limit of the asset as both bridges hold it now."""
    if not (isinstance(ctx, RelayContext) and isinstance(symbol, str)):
        return
    with ctx.transaction() as session:
        asset = session.scalar(select(Asset).where(Asset.symbol == symbol))
        if asset is None:
            return
        rows = list(session.scalars(select(RouteLimit).where(RouteLimit.asset_id == asset.id)))
        reads = [_buckets(ctx, row, asset) for row in rows]
    for found in reads:
        for labels, capacity, available in found:
            m.RATE_LIMIT_CAPACITY.labels(*labels).set(capacity)
            m.RATE_LIMIT_AVAILABLE.labels(*labels).set(available)


def _buckets(
    ctx: RelayContext, row: RouteLimit, asset: Asset
) -> list[tuple[tuple[str, str, str, str], int, int]]:
    route, found = row.route, []
    for chain, remote, outbound in ((route.src, route.dst, True), (route.dst, route.src, False)):
        token = local_token(asset, chain)
        adapter = ctx.adapter(chain)
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
