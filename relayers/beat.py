"""Beat's scheduler: the relay tick is a plain interval, kept in memory, that survives the
wall clock going back.

Celery's default scheduler keeps when each entry last ran, in a file and in a heap of wall
clock times. When the clock goes back an hour (an NTP step, a VM restored), every entry
looks as if it last ran in the future, and beat sends nothing for that hour: no scans, no
deliveries. Here an entry that last ran "in the future" is due from now instead."""

from __future__ import annotations

from typing import Any

from celery.beat import Scheduler


class ClockSafeScheduler(Scheduler):  # type: ignore[misc]
    def tick(self, *args: Any, **kwargs: Any) -> float:
        for entry in self.schedule.values():
            now = entry.default_now()
            if entry.last_run_at > now:  # the wall clock went back
                entry.last_run_at = now
                self._heap = None  # rebuilt by this tick from times that make sense
        return float(super().tick(*args, **kwargs))
