"""The FastAPI application: routers under /v1, one JSON error shape for every failure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from hub.api.errors import allowed_methods, error_response
from hub.api.limits import BodyLimit, BodyTooLargeError, too_large
from hub.api.observe import Observe
from hub.api.routers import alerts, assets, chains, health, messages, overview, routes, web
from hub.db.engine import make_engine, make_sessionmaker
from hub.domain.errors import HubError
from hub.metrics import api_registry, install
from hub.settings import Settings

log = logging.getLogger("hub.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="Islands Hub",
        version="0.1.0",
        description="The registry of chains, routes and assets, and the state of every message.",
    )
    app.state.settings = settings
    # Connections for every endpoint thread, kept: overflow ones were opened and closed
    # per request under load.
    app.state.engine = make_engine(settings.database_url, pool_size=ENDPOINT_THREADS + 4)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    # Hot single-query reads: no BEGIN/ROLLBACK round trips (one statement is one snapshot).
    reads = app.state.engine.execution_options(isolation_level="AUTOCOMMIT")
    app.state.read_sessionmaker = make_sessionmaker(reads)
    install()  # count what this process commits, and its RPC calls
    app.state.metrics = api_registry(app.state.sessionmaker)
    for module in (health, chains, routes, assets, messages, alerts, overview, web):
        app.include_router(module.router)
    web.mount_assets(app)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Observe)
    return app


# Threads that run the (synchronous) endpoints: about the database pool's size. More only
# wait for a connection and contend for the GIL (40, anyio's default, starved the server's
# own event loop under load).
ENDPOINT_THREADS = 12


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = ENDPOINT_THREADS
    yield


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        # RFC 9110: a 401 names the scheme the client should use.
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_describe(e) for e in exc.errors()]
        return error_response(422, "invalid_input", "; ".join(problems), {"problems": problems})

    @app.exception_handler(DataError)
    async def out_of_range(_request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (a number out of range): bad input, not a fault.
        return error_response(422, "invalid_input", f"a value is out of range: {exc.orig}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8): the same refusal as
            # any other body that is not JSON.
            return error_response(422, "invalid_input", "the request body is not valid JSON")
        if isinstance(exc, BodyTooLargeError):
            return too_large(exc.limit)
        code = "not_found" if exc.status_code == 404 else "http_error"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: a 405 says which methods the resource has
            headers["Allow"] = allowed_methods(request)
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(500, "internal", "internal error; the hub logged the details")


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    message = str(error.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
