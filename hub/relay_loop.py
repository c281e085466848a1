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
        while not self._stop_event.wait(self.ctx.settings.tick_seconds):
            try:
                self.tick()
            except Exception:  # a bad tick is logged; the loop must outlive it
                log.exception("relay tick failed")

    def tick(self) -> None:
        ctx, chains = self.ctx, steps.active_chains(self.ctx)
        for chain in chains:
            steps.guarded("scan", steps.scan, ctx, chain)
        for validator in self._validators:
            steps.guarded("attest", steps.attest, ctx, validator)
        if self._key is not None:
            for chain in chains:
                steps.guarded("confirm", steps.confirm, ctx, chain, self._key)
                steps.guarded("deliver", steps.deliver, ctx, chain, self._key)
        if self._guardian is not None:
            for chain in chains:
                steps.guarded("guardian", steps.guard, ctx, chain, self._guardian)
        for symbol in steps.asset_symbols(ctx):
            steps.guarded("supply", steps.supply, ctx, symbol)
