"""The per-process relay context, made lazily in each worker child after the fork."""

from __future__ import annotations

import os

from hub.logs import configure
from hub.services.relay.context import RelayContext
from hub.services.relay.validator import Validator
from hub.settings import Settings

_context: tuple[int, RelayContext] | None = None


def context() -> RelayContext:
    """This process's context; a forked child never reuses its parent's connections."""
    global _context  # noqa: PLW0603 - one context per process, by design
    if _context is None or _context[0] != os.getpid():
        settings = Settings()
        configure(settings.log_level)
        _context = (os.getpid(), RelayContext.start(settings))
    return _context[1]


def relayer_key() -> str | None:
    key = context().settings.relayer_key
    return key.get_secret_value() if key else None


def validator() -> Validator | None:
    settings = context().settings
    if settings.validator_key is None:
        return None
    return Validator(settings.validator_key.get_secret_value(), settings.validator_rpc_urls)
