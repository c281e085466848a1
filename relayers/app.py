"""The Celery application. Settings are read when a worker or beat process starts; engines
and RPC clients are made in each worker child after it forks (see relayers.runtime)."""

from __future__ import annotations

import sys
from datetime import timedelta

from celery import Celery

from hub.settings import Settings, SettingsError, load_settings

QUEUE_RELAY = "relay"
QUEUE_DELIVER = "deliver"


def make_app(settings: Settings) -> Celery:
    app = Celery("relayers", include=["relayers.tasks"])
    app.conf.update(
        broker_url=settings.redis_url,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        # A task is acknowledged after it ran, and requeued when its worker dies mid-run:
        # every task is idempotent, so running twice is harmless and losing one is not.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_RELAY,
        task_routes={
            "relay.deliver": {"queue": QUEUE_DELIVER},
            "relay.confirm": {"queue": QUEUE_DELIVER},
            "relay.guardian": {"queue": QUEUE_DELIVER},
        },
        beat_scheduler="relayers.beat:ClockSafeScheduler",
        beat_schedule={
            "relay-tick": {
                "task": "relay.tick",
                "schedule": timedelta(seconds=settings.tick_seconds),
                "options": {"expires": settings.tick_seconds * 4},
            }
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


try:
    app = make_app(load_settings())
except SettingsError as exc:
    sys.exit(f"error: {exc}")
