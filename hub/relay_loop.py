"""The embedded form's relay: the same runner and stages the Celery tasks use, in one thread
of the hub process, one kind after another each tick (SQLite wants one writer at a time)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from hub.services.relay.context import RelayContext
from hub.services.relay.runner import Runner
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
        self.runner = Runner(ctx, relayer_key, guardian_key)
        self._validators = list(validators)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def run(self) -> None:
        busy = False
        # A tick that did work goes on at once (its steps' batches are bounded, so more may
        # wait: the runner's `follow_ups`, a tick at a time); an idle one waits for the next.
        while not self._stop_event.wait(0 if busy else self.ctx.settings.tick_seconds):
            try:
                busy = self.tick()
            except Exception:  # a bad tick is logged; the loop must outlive it
                log.exception("relay tick failed")
                busy = False

    def tick(self) -> bool:
        """One step of every kind of work; whether any did work."""
        return self.runner.tick(self._validators)
