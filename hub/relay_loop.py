"""The embedded form's relay: the same steps the Celery tasks run, in one thread of the hub
process, one kind after another each tick (SQLite wants one writer at a time)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from hub.services.relay import steps
from hub.services.relay.context import RelayContext
from hub.services.relay.validator import Validator

log = logging.getLogger("hub.relay.loop")


class RelayLoop(threading.Thread):
    def __init__(
        self,
        ctx: RelayContext,
        relayer_key: str | None,
        validators: Sequence[Validator],
        guardian_key: str | None = None,
    ) -> None:
        super().__init__(name="relay-loop", daemon=True)
        self.ctx = ctx
        self._key = relayer_key
        self._guardian = guardian_key
        self._validators = list(validators)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def run(self) -> None:
        busy = False
        # A tick that did work goes on at once (its steps' batches are bounded, so more may
        # wait); an idle one waits for the next tick.
        while not self._stop_event.wait(0 if busy else self.ctx.settings.tick_seconds):
            try:
                busy = self.tick()
            except Exception:  # a bad tick is logged; the loop must outlive it
                log.exception("relay tick failed")
                busy = False

    def tick(self) -> bool:
        """One step of every kind of work; whether any of them did something."""
        ctx, chains = self.ctx, steps.active_chains(self.ctx)
        results: list[object] = []
        for chain in chains:
            results.append(steps.guarded("scan", steps.scan, ctx, chain))
        for validator in self._validators:
            results.append(steps.guarded("attest", steps.attest, ctx, validator))
        if self._key is not None:
            for chain in chains:
                results.append(steps.guarded("confirm", steps.confirm, ctx, chain, self._key))
                results.append(steps.guarded("deliver", steps.deliver, ctx, chain, self._key))
        if self._guardian is not None:
            for chain in chains:
                steps.guarded("guardian", steps.guard, ctx, chain, self._guardian)
        for symbol in steps.asset_symbols(ctx):
            steps.guarded("supply", steps.supply, ctx, symbol)
        return any(_did_work(r) for r in results)


def _did_work(result: object) -> bool:
    return (isinstance(result, int) and result > 0) or bool(getattr(result, "busy", False))
