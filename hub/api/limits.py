"""Refuse request bodies over HUB_MAX_BODY_BYTES with 413, before they are read into memory:
at once when Content-Length says so, and while streaming when it does not (chunked)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.errors import error_response


class BodyTooLargeError(HTTPException):
    """Raised from `receive`; an HTTPException so that FastAPI's body reader passes it on
    instead of turning it into a 400, and the app's handler answers in the one shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def too_large(limit: int) -> JSONResponse:
    # The body stays unread, so the connection cannot carry another request.
    message = f"the request body is larger than {limit} bytes"
    headers = {"Connection": "close"}
    return error_response(413, "too_large", message, {"limit": limit}, headers)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await too_large(self.max_bytes)(scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLargeError:
            # FastAPI answers this itself; whatever else read the body ends up here.
            if started:
                raise
            await too_large(self.max_bytes)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed Content-Length itself
    return None
