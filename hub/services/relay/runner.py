"""The one runner of relay stages, for the Celery tasks and the embedded loop alike.

Every stage has one shape: `stage(session, target, ports) -> report`, where the target is a
chain, an asset or a validator, and `ports` reaches the chains. The runner does the rest: it
finds the target, takes the stage's lease (if it has one) in a short transaction of its own,
runs the stage in a session it commits (or rolls back), does what the stage left for after
the commit (sending the transactions it recorded), releases the lease, and catches whatever
goes wrong, so that one chain's or one message's failure never stops another.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import AdapterError
from hub.db.models import Asset, Chain
from hub.domain.errors import HubError
from hub.domain.states import ChainStatus
from hub.services.relay import leases, observe
from hub.services.relay.confirm import confirm
from hub.services.relay.context import RelayContext
from hub.services.relay.deliver import deliver, deliver_lease
from hub.services.relay.guardian import guard
from hub.services.relay.ports import Adapters, Ports
from hub.services.relay.scan import scan
from hub.services.relay.supply import supply
from hub.services.relay.validator import Validator, attest

log = logging.getLogger("hub.relay")
T = TypeVar("T")


@dataclass(frozen=True)
class Stage(Generic[T]):
    """A kind of relay work: how to find its target, which lease it holds, the stage itself."""

    name: str
    run: Callable[[Session, T, Ports], object]
    find: Callable[[Session, Any], T | None]
    lease: Callable[[T, Ports], str] | None = None
    # which key the process must hold for it to run ("relayer", "guardian")
    needs: str | None = None


def chain_named(session: Session, name: str) -> Chain | None:
    return session.scalar(select(Chain).where(Chain.name == name))


def asset_named(session: Session, symbol: str) -> Asset | None:
    return session.scalar(select(Asset).where(Asset.symbol == symbol))


def _itself(_session: Session, validator: Validator) -> Validator:
    return validator


STAGES: dict[str, Stage[Any]] = {
    s.name: s
    for s in (
        Stage("scan", scan, chain_named, lambda chain, _: f"scan:{chain.name}"),
        Stage("attest", attest, _itself),
        Stage("deliver", deliver, chain_named, deliver_lease, needs="relayer"),
        Stage("confirm", confirm, chain_named, needs="relayer"),
        Stage("guardian", guard, chain_named, lambda c, _: f"guardian:{c.name}", "guardian"),
        Stage("supply", supply, asset_named),
    )
}


class Runner:
    """Runs stages for one process: its context (sessions, adapters) and the keys it holds."""

    def __init__(
        self,
        ctx: RelayContext,
        relayer_key: str | None = None,
        guardian_key: str | None = None,
        chains: Adapters | None = None,
    ) -> None:
        """`chains` gives the adapters (the context's, unless a test gives fake ones)."""
        self.ctx = ctx
        self.ports = Ports(ctx.settings, chains or ctx, relayer_key, guardian_key)

    def can_run(self, stage: str) -> bool:
        """Whether this process holds the key the stage needs."""
        needs = STAGES[stage].needs
        return (
            needs is None
            or (self.ports.relayer_key if needs == "relayer" else self.ports.guardian_key)
            is not None
        )

    def run(self, stage: str, target: Any) -> object | None:
        """One step of `stage` on `target` (a chain name, an asset symbol or a validator):
        its report; None when it failed (logged and counted, never raised) or did not run
        (its lease is held elsewhere, its target is gone)."""
        started = time.monotonic()
        try:
            report = self._run(STAGES[stage], target)
        except (AdapterError, HubError, LookupError) as exc:  # a chain, a refused move, a key
            _count_error(stage)
            log.warning(
                "step failed", extra={"step": stage, "on": _shown(target), "error": str(exc)}
            )
            return None
        except Exception:  # a bug or a lost database: logged with its traceback
            _count_error(stage)
            log.exception("step crashed", extra={"step": stage, "on": _shown(target)})
            return None
        shown = target if isinstance(target, str) else ""
        seconds = time.monotonic() - started
        observe.step_done(stage, self.ctx, self.ports, shown, report, seconds)
        _log_report(stage, report)
        return report

    def _run(self, stage: Stage[T], target: Any) -> object | None:
        lease = None
        if stage.lease is not None:
            lease = self._acquire(stage, target)
            if lease is None:
                return None
        try:
            with self.ctx.sessions() as session:
                found = stage.find(session, target)
                if found is None:
                    return None
                try:
                    report = stage.run(session, found, self.ports)
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
            after = getattr(report, "after_commit", None)
            if after is not None:
                after()  # recorded and committed above; sent only now
            return report
        finally:
            if lease is not None:
                with self.ctx.transaction() as session:
                    leases.release(session, lease, leases.owner())

    def _acquire(self, stage: Stage[T], target: Any) -> str | None:
        """The stage's lease on its target; None while another process holds it."""
        with self.ctx.transaction() as session:
            found = stage.find(session, target)
            if found is None or stage.lease is None:
                return None
            name = stage.lease(found, self.ports)
            seconds = self.ctx.settings.lease_seconds
            if leases.acquire(session, name, leases.owner(), seconds):
                return name
        log.debug("lease held elsewhere", extra={"step": stage.name, "lease": name})
        return None

    # -- what there is to run --------------------------------------------------------

    def active_chains(self) -> list[str]:
        with self.ctx.transaction() as session:
            query = select(Chain.name).where(Chain.status == ChainStatus.ACTIVE)
            return list(session.scalars(query.order_by(Chain.id)))

    def asset_symbols(self) -> list[str]:
        with self.ctx.transaction() as session:
            return list(session.scalars(select(Asset.symbol).order_by(Asset.id)))

    def tick(self, validators: Sequence[Validator] = ()) -> bool:
        """One step of every kind of work, one kind after another (the embedded loop: SQLite
        wants one writer at a time); whether any step did work (see `did_work`)."""
        chains, busy = self.active_chains(), False
        for chain in chains:
            busy |= did_work(self.run("scan", chain))
        for validator in validators:
            busy |= did_work(self.run("attest", validator))
        if self.can_run("deliver"):
            for chain in chains:
                busy |= did_work(self.run("confirm", chain))
                busy |= did_work(self.run("deliver", chain))
        if self.can_run("guardian"):
            for chain in chains:
                self.run("guardian", chain)
        for symbol in self.asset_symbols():
            self.run("supply", symbol)
        return busy


# Stages whose batches are bounded: when a step did work, more may wait, so it runs again at
# once rather than at the next tick (work flows continuously under load; an idle step waits).
AGAIN = frozenset({"scan", "attest", "deliver", "confirm"})


def did_work(report: object) -> bool:
    """Whether a step's report says it did work (None: it failed or did not run)."""
    return bool(getattr(report, "busy", False))


@dataclass(frozen=True)
class Next:
    """A step to run at once after another: `target` None means every target of the stage
    (each active chain, each validator)."""

    stage: str
    target: Any = None


def follow_ups(stage: str, target: Any, report: object) -> list[Next]:
    """What runs at once after a step rather than at the next tick: the same step when it did
    work, and the stage its work feeds (final messages -> attest, signatures -> deliver, a
    sent delivery -> confirm). The Celery tasks send these; the embedded loop ticks again."""
    if not did_work(report):
        return []
    again = [Next(stage, target)] if stage in AGAIN else []
    if stage == "scan" and getattr(report, "finalized", False):
        again.append(Next("attest"))
    elif stage == "attest":
        again.append(Next("deliver"))
    elif stage == "deliver":
        again.append(Next("confirm", target))
    return again


STEP_ERRORS: Counter[str] = Counter()


def _count_error(what: str) -> None:
    STEP_ERRORS[what] += 1
    observe.step_failed(what)


_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def _shown(target: Any) -> list[str]:
    """The target for a log line: a chain name or symbol, never a key or a validator."""
    return [target] if isinstance(target, str) and not _KEY.match(target) else []


def _log_report(what: str, result: object) -> None:
    """A step that did something says so in one log event."""
    if getattr(result, "busy", False) and dataclasses.is_dataclass(result):
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
        fields.pop("after_commit", None)
        log.info(what, extra={k: v for k, v in fields.items() if v not in (None, 0, [], {})})
