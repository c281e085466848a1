"""One step of each kind of relay work, by name, in its own transaction(s). Celery tasks and
the embedded loop call exactly these."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from adapters.base import AdapterError
from hub.db.models import Asset, Chain, ValidatorSet, utcnow
from hub.domain.errors import HubError
from hub.domain.states import ChainStatus
from hub.services.relay import leases, observe
from hub.services.relay.attestations import refresh_validator_set
from hub.services.relay.confirm import confirm_chain
from hub.services.relay.context import RelayContext
from hub.services.relay.deliver import deliver_ready, owner
from hub.services.relay.guardian import guard_chain
from hub.services.relay.scan import ScanReport, scan_chain
from hub.services.relay.supply import SupplyCheck, watch_asset
from hub.services.relay.validator import attest_pending

log = logging.getLogger("hub.relay")
VALIDATOR_SET_MAX_AGE = timedelta(seconds=10)
T = TypeVar("T")


def active_chains(ctx: RelayContext) -> list[str]:
    with ctx.transaction() as session:
        query = select(Chain.name).where(Chain.status == ChainStatus.ACTIVE).order_by(Chain.id)
        return list(session.scalars(query))


def asset_symbols(ctx: RelayContext) -> list[str]:
    with ctx.transaction() as session:
        return list(session.scalars(select(Asset.symbol).order_by(Asset.id)))


def scan(ctx: RelayContext, chain_name: str) -> ScanReport:
    """Scan one chain, under a lease so two scanners never race on one chain."""
    lease = f"scan:{chain_name}"
    with ctx.transaction() as session:
        if not leases.acquire(session, lease, owner(), ctx.settings.lease_seconds):
            return ScanReport(chain_name, notes=["another scanner holds the lease"])
    try:
        with ctx.transaction() as session:
            chain = session.scalar(select(Chain).where(Chain.name == chain_name))
            if chain is None:
                return ScanReport(chain_name)
            adapter = ctx.adapter(chain)
            vset = session.get(ValidatorSet, chain.id)
            if vset is None or utcnow() - vset.updated_at > VALIDATOR_SET_MAX_AGE:
                refresh_validator_set(session, chain, adapter)
            return scan_chain(session, chain, adapter, ctx.settings.scan_range)
    finally:
        with ctx.transaction() as session:
            leases.release(session, lease, owner())


# The other steps are the services themselves, under the names the tasks and the loop use.
deliver = deliver_ready
confirm = confirm_chain
attest = attest_pending
guard = guard_chain


def supply(ctx: RelayContext, symbol: str) -> SupplyCheck | None:
    with ctx.transaction() as session:
        asset = session.scalar(select(Asset).where(Asset.symbol == symbol))
        if asset is None:
            return None
        return watch_asset(session, asset, ctx.adapter)


def guarded(what: str, step: Callable[..., T], *args: Any) -> T | None:
    """Run a step; whatever goes wrong in it is logged and counted, never raised, so one
    chain's or one message's failure never stops the other chains, stages or the supply watch
    (the next tick tries again). A step that did something says so in one log event."""
    started = time.monotonic()
    try:
        result = step(*args)
    except (AdapterError, HubError) as exc:  # a chain that cannot answer, a refused move
        _count_error(what)
        log.warning("step failed", extra={"step": what, "on": _shown(args), "error": str(exc)})
        return None
    except Exception:  # a bug or a lost database: logged with its traceback
        _count_error(what)
        log.exception("step crashed", extra={"step": what, "on": _shown(args)})
        return None
    observe.step_done(what, args, result, time.monotonic() - started)
    _report(what, result)
    return result


STEP_ERRORS: Counter[str] = Counter()


def _count_error(what: str) -> None:
    STEP_ERRORS[what] += 1
    observe.step_failed(what)


_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def _shown(args: tuple[Any, ...]) -> list[str]:
    """The step's arguments for a log line: chain names and symbols, never keys or contexts."""
    return [a for a in args if isinstance(a, str) and not _KEY.match(a)]


def _report(what: str, result: object) -> None:
    if isinstance(result, int) and result:
        log.info(what, extra={"count": result})
    elif getattr(result, "busy", False) and dataclasses.is_dataclass(result):
        fields = dataclasses.asdict(result)  # type: ignore[arg-type]
        log.info(what, extra={k: v for k, v in fields.items() if v not in (None, 0, [], {})})
