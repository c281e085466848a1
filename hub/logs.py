"""Structured logs: one JSON object a line, carrying the message id wherever there is one."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_NAMES_URLS = ("web3", "urllib3", "requests")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
# Fields every event logged in this context carries (the message id a request names).
_context: ContextVar[dict[str, Any] | None] = ContextVar("islands_log_context", default=None)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Events logged inside carry these fields (an event's own fields win)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(_context.get() or {})
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    # The process's real stderr: Celery swaps sys.stderr for a logging proxy in its workers.
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Their debug lines name the URL they connect to, which may carry an RPC key.
    for name in _NAMES_URLS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
