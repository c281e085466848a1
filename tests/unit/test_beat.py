"""Beat keeps ticking when the wall clock goes back (an NTP step, a restored VM)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from hub.settings import Settings
from relayers.app import make_app
from relayers.beat import ClockSafeScheduler


def test_the_tick_runs_after_the_clock_went_back_an_hour() -> None:
    app = make_app(Settings(redis_url="redis://127.0.0.1:1/0", tick_seconds=0.2))
    scheduler = ClockSafeScheduler(app=app)
    sent: list[str] = []

    def apply_entry(entry: Any, producer: Any = None) -> None:
        sent.append(entry.name)

    scheduler.apply_entry = apply_entry  # type: ignore[method-assign]
    scheduler.producer = None  # never connect to a broker
    entry = scheduler.schedule["relay-tick"]
    # As if the tick last ran an hour from now: the clock has just been set back an hour.
    entry.last_run_at = entry.default_now() + timedelta(hours=1)
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(max(0.0, min(scheduler.tick(), 0.2)))
    assert sent[:1] == ["relay-tick"]
