"""Each API request: counted and timed by route for /metrics, logged as one JSON event when it
wrote or was refused, and carrying the message id its path names into every event it logs."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.logs import bound
from hub.metrics import HTTP_REQUESTS, HTTP_SECONDS

log = logging.getLogger("hub.api.request")
_MESSAGE_PATH = re.compile(r"^/v1/(?:messages|transfers)/(?:0x)?([0-9a-fA-F]{64})(?:/|$)")


class Observe:
    """Pure ASGI (a streaming response such as the feed passes through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, seen = time.monotonic(), {"status": 500}
        method = str(scope["method"])

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = int(message["status"])
                HTTP_SECONDS.labels(method, _template(scope)).observe(time.monotonic() - started)
            await send(message)

        with bound(**_fields(str(scope["path"]))):
            try:
                await self.app(scope, receive, sending)
            finally:
                _done(scope, method, seen["status"], time.monotonic() - started)


def _fields(path: str) -> dict[str, Any]:
    found = _MESSAGE_PATH.match(path)
    return {"message_id": "0x" + found.group(1).lower()} if found else {}


def _template(scope: Scope) -> str:
    """The route's path template (bounded label values), not the path asked for."""
    return str(getattr(scope.get("route"), "path", None) or "unmatched")


def _done(scope: Scope, method: str, status: int, seconds: float) -> None:
    route = _template(scope)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    level = logging.INFO if method not in ("GET", "HEAD") or status >= 400 else logging.DEBUG
    log.log(
        level,
        "request",
        extra={"method": method, "route": route, "status": status, "ms": round(seconds * 1000)},
    )
