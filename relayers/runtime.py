"""The per-process relay context, made lazily in each worker child after the fork."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from celery.signals import worker_init, worker_process_shutdown
from redis import Redis

from hub import metrics
from hub.logs import configure
from hub.services.relay import validator_config
from hub.services.relay.context import RelayContext
from hub.services.relay.validator import Validator
from hub.settings import Settings

_context: tuple[int, RelayContext] | None = None
_validator: tuple[int, Validator | None] | None = None
_redis: tuple[int, Redis] | None = None
# The threads of a thread-pool worker share the process's context, made once.
_making = threading.Lock()


def context() -> RelayContext:
    """This process's context; a forked child never reuses its parent's connections."""
    global _context  # noqa: PLW0603 - one context per process, by design
    with _making:
        if _context is None or _context[0] != os.getpid():
            settings = Settings()
            configure(settings.log_level)
            metrics.install()
            _context = (os.getpid(), RelayContext.start(settings))
        return _context[1]


def redis() -> Redis:
    """This process's Redis client (the broker's server), for marks of pending steps."""
    global _redis  # noqa: PLW0603 - one client per process, by design
    url = context().settings.redis_url
    with _making:
        if _redis is None or _redis[0] != os.getpid():
            _redis = (os.getpid(), Redis.from_url(url))
        return _redis[1]


def relayer_key() -> str | None:
    key = context().settings.relayer_key
    return key.get_secret_value() if key else None


def guardian_key() -> str | None:
    key = context().settings.guardian_key
    return key.get_secret_value() if key else None


def validator() -> Validator | None:
    """This process's validator: its key from the environment, its chains from its own file."""
    global _validator  # noqa: PLW0603 - read once per process
    settings = context().settings
    with _making:
        if _validator is None or _validator[0] != os.getpid():
            _validator = (os.getpid(), _load_validator(settings))
        return _validator[1]


def _load_validator(settings: Settings) -> Validator | None:
    if settings.validator_key is None:
        return None
    config = validator_config.load(settings.validator_config)
    return Validator(settings.validator_key.get_secret_value(), config)


@worker_init.connect
def _refuse_to_start_without_config(**_: Any) -> None:
    """A validator worker without its own configuration does not start at all."""
    try:
        _load_validator(Settings())
    except validator_config.ValidatorConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's main process serves /metrics for all its processes (multiprocess mode:
    each pool child writes its values to files the main process adds up)."""
    settings = Settings()
    if settings.metrics_port is None:
        return
    metrics.prepare_multiprocess_dir()
    metrics.serve(settings.metrics_port, settings.metrics_host)


@worker_process_shutdown.connect
def _child_exited(**_: Any) -> None:
    metrics.process_exited(os.getpid())
