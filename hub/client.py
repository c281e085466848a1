"""A Python client of the hub's REST API: `HubClient` (sync) and `AsyncHubClient` (async),
typed with the API's own models. The CLI and the tests use it.

    with HubClient("http://127.0.0.1:8000") as hub:
        for event in hub.watch(backlog=10):      # the live feed, reconnecting as it goes
            print(event.message_id, event.state)

Refusals raise `HubApiError` with the API's error code, message and details.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import BaseModel

from hub.api.schemas import (
    AlertOut,
    AssetCreate,
    AssetOut,
    AttestationAccepted,
    ChainCreate,
    ChainOut,
    ChainPatch,
    MessageOut,
    MessagePage,
    RouteOut,
    RoutePatch,
    TransferOut,
)
from hub.api.views import FeedEventOut, SearchOut, StatusOut

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
# States a message does not leave by itself (failed is retried, so it is not one of them).
SETTLED = frozenset({"delivered", "returned", "rejected", "orphaned"})
FEED_READ_TIMEOUT = 20.0  # the feed sends a keep-alive every 15 s
RECONNECT_SECONDS = 1.0


class HubApiError(Exception):
    """The hub refused a request; `code` and `details` are the API's."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or {}


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request and how to read its answer: both clients run the same calls."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    body: Any = None
    text: bool = False  # the answer is text, not JSON


def _one(model: type[M]) -> Callable[[Any], M]:
    return model.model_validate


def _many(model: type[M]) -> Callable[[Any], list[M]]:
    return lambda data: [model.model_validate(item) for item in data]


def _body(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_none=True)


def _query(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class _Calls:
    """Every call the clients make."""

    @staticmethod
    def status() -> _Call[StatusOut]:
        return _Call("GET", "/v1/status", _one(StatusOut))

    @staticmethod
    def chains() -> _Call[list[ChainOut]]:
        return _Call("GET", "/v1/chains", _many(ChainOut))

    @staticmethod
    def chain(name: str) -> _Call[ChainOut]:
        return _Call("GET", f"/v1/chains/{name}", _one(ChainOut))

    @staticmethod
    def register_chain(body: ChainCreate) -> _Call[ChainOut]:
        return _Call("POST", "/v1/chains", _one(ChainOut), body=_body(body))

    @staticmethod
    def update_chain(name: str, body: ChainPatch) -> _Call[ChainOut]:
        return _Call("PATCH", f"/v1/chains/{name}", _one(ChainOut), body=_body(body))

    @staticmethod
    def routes() -> _Call[list[RouteOut]]:
        return _Call("GET", "/v1/routes", _many(RouteOut))

    @staticmethod
    def route(route_id: int) -> _Call[RouteOut]:
        return _Call("GET", f"/v1/routes/{route_id}", _one(RouteOut))

    @staticmethod
    def create_route(src: str, dst: str) -> _Call[RouteOut]:
        return _Call("POST", "/v1/routes", _one(RouteOut), body={"src": src, "dst": dst})

    @staticmethod
    def update_route(route_id: int, body: RoutePatch) -> _Call[RouteOut]:
        return _Call("PATCH", f"/v1/routes/{route_id}", _one(RouteOut), body=_body(body))

    @staticmethod
    def assets() -> _Call[list[AssetOut]]:
        return _Call("GET", "/v1/assets", _many(AssetOut))

    @staticmethod
    def asset(symbol: str) -> _Call[AssetOut]:
        return _Call("GET", f"/v1/assets/{symbol}", _one(AssetOut))

    @staticmethod
    def register_asset(body: AssetCreate) -> _Call[AssetOut]:
        return _Call("POST", "/v1/assets", _one(AssetOut), body=_body(body))

    @staticmethod
    def message(message_id: str) -> _Call[MessageOut]:
        return _Call("GET", f"/v1/messages/{message_id}", _one(MessageOut))

    @staticmethod
    def messages(**filters: Any) -> _Call[MessagePage]:
        return _Call("GET", "/v1/messages", _one(MessagePage), params=_query(**filters))

    @staticmethod
    def transfer(message_id: str) -> _Call[TransferOut]:
        return _Call("GET", f"/v1/transfers/{message_id}", _one(TransferOut))

    @staticmethod
    def transfers(src_tx_hash: str) -> _Call[list[TransferOut]]:
        params = {"src_tx_hash": src_tx_hash}
        return _Call("GET", "/v1/transfers", _many(TransferOut), params=params)

    @staticmethod
    def search(query: str, limit: int = 50) -> _Call[SearchOut]:
        params = {"q": query, "limit": limit}
        return _Call("GET", "/v1/search", _one(SearchOut), params=params)

    @staticmethod
    def post_attestation(message_id: str, signature: str) -> _Call[AttestationAccepted]:
        path = f"/v1/messages/{message_id}/attestations"
        return _Call("POST", path, _one(AttestationAccepted), body={"signature": signature})

    @staticmethod
    def retry(message_id: str) -> _Call[MessageOut]:
        return _Call("POST", f"/v1/messages/{message_id}/retry", _one(MessageOut))

    @staticmethod
    def return_transfer(message_id: str) -> _Call[TransferOut]:
        return _Call("POST", f"/v1/transfers/{message_id}/return", _one(TransferOut))

    @staticmethod
    def alerts() -> _Call[list[AlertOut]]:
        return _Call("GET", "/v1/alerts", _many(AlertOut))

    @staticmethod
    def metrics() -> _Call[str]:
        return _Call("GET", "/metrics", str, text=True)


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _answer(call: _Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise _error(response)
    return call.parse(response.text if call.text else response.json())


def _error(response: httpx.Response) -> HubApiError:
    try:
        error = response.json()["error"]
        return HubApiError(response.status_code, error["code"], error["message"], error["details"])
    except (ValueError, KeyError, TypeError):
        return HubApiError(response.status_code, "http_error", response.text[:500])


@dataclass
class _Sse:
    """Reads server-sent events line by line; gives each complete `state` event."""

    last_id: int | None = None
    _data: list[str] = field(default_factory=list)
    _event: str = ""

    def line(self, text: str) -> FeedEventOut | None:
        if text == "":
            return self._dispatch()
        if text.startswith(":"):
            return None
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and value.isdigit():
            self.last_id = int(value)
        return None

    def _dispatch(self) -> FeedEventOut | None:
        data, event = "\n".join(self._data), self._event
        self._data, self._event = [], ""
        if event != "state" or not data:
            return None
        return FeedEventOut.model_validate(json.loads(data))


def _feed_params(
    message_id: str | None, chain: str | None, backlog: int, after: int | None
) -> dict[str, Any]:
    if after is not None:
        return _query(message_id=message_id, chain=chain, after=after)
    return _query(message_id=message_id, chain=chain, backlog=backlog or None)


def _read_timeout(deadline: float | None) -> float:
    if deadline is None:
        return FEED_READ_TIMEOUT
    return max(0.5, min(FEED_READ_TIMEOUT, deadline - time.monotonic()))


class HubClient:
    """The hub's REST API, synchronously. `token`: an API key, for writes."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        response = self._http.request(call.method, call.path, params=call.params, json=call.body)
        return _answer(call, response)

    def status(self) -> StatusOut:
        return self._run(_Calls.status())

    def chains(self) -> list[ChainOut]:
        return self._run(_Calls.chains())

    def chain(self, name: str) -> ChainOut:
        return self._run(_Calls.chain(name))

    def register_chain(self, body: ChainCreate) -> ChainOut:
        return self._run(_Calls.register_chain(body))

    def update_chain(self, name: str, body: ChainPatch) -> ChainOut:
        return self._run(_Calls.update_chain(name, body))

    def routes(self) -> list[RouteOut]:
        return self._run(_Calls.routes())

    def route(self, route_id: int) -> RouteOut:
        return self._run(_Calls.route(route_id))

    def create_route(self, src: str, dst: str) -> RouteOut:
        return self._run(_Calls.create_route(src, dst))

    def update_route(self, route_id: int, body: RoutePatch) -> RouteOut:
        return self._run(_Calls.update_route(route_id, body))

    def assets(self) -> list[AssetOut]:
        return self._run(_Calls.assets())

    def asset(self, symbol: str) -> AssetOut:
        return self._run(_Calls.asset(symbol))

    def register_asset(self, body: AssetCreate) -> AssetOut:
        return self._run(_Calls.register_asset(body))

    def message(self, message_id: str) -> MessageOut:
        return self._run(_Calls.message(message_id))

    def messages(self, **filters: Any) -> MessagePage:
        """One page: state=, src=, dst=, sender=, src_tx_hash=, limit=, cursor=."""
        return self._run(_Calls.messages(**filters))

    def iter_messages(self, **filters: Any) -> Iterator[MessageOut]:
        """Every message the filters select, newest first, page after page."""
        cursor = None
        while True:
            page = self.messages(**filters, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def transfer(self, message_id: str) -> TransferOut:
        return self._run(_Calls.transfer(message_id))

    def transfers(self, src_tx_hash: str) -> list[TransferOut]:
        return self._run(_Calls.transfers(src_tx_hash))

    def search(self, query: str, limit: int = 50) -> SearchOut:
        return self._run(_Calls.search(query, limit))

    def post_attestation(self, message_id: str, signature: str) -> AttestationAccepted:
        return self._run(_Calls.post_attestation(message_id, signature))

    def retry(self, message_id: str) -> MessageOut:
        return self._run(_Calls.retry(message_id))

    def return_transfer(self, message_id: str) -> TransferOut:
        return self._run(_Calls.return_transfer(message_id))

    def alerts(self) -> list[AlertOut]:
        return self._run(_Calls.alerts())

    def metrics(self) -> str:
        return self._run(_Calls.metrics())

    def watch(
        self,
        *,
        message_id: str | None = None,
        chain: str | None = None,
        backlog: int = 0,
        after: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[FeedEventOut]:
        """The live feed: each message entering a state, as it happens. `backlog=N` starts
        with the last N events. Reconnects where it left off when a stream ends; stops after
        `timeout` seconds if given (else when the caller stops iterating)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sse = _Sse(last_id=after)
        while deadline is None or time.monotonic() < deadline:
            params = _feed_params(message_id, chain, backlog, sse.last_id)
            try:
                yield from self._stream(params, sse, deadline)
            except (httpx.TransportError, httpx.RemoteProtocolError):
                time.sleep(RECONNECT_SECONDS)  # the hub restarted, or a quiet spell ran out

    def _stream(
        self, params: dict[str, Any], sse: _Sse, deadline: float | None
    ) -> Iterator[FeedEventOut]:
        timeout = httpx.Timeout(10.0, read=_read_timeout(deadline))
        with self._http.stream("GET", "/v1/feed", params=params, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for text in response.iter_lines():
                event = sse.line(text)
                if event is not None:
                    yield event
                if deadline is not None and time.monotonic() >= deadline:
                    return

    def wait_for(
        self,
        message_id: str,
        until: Iterable[str] = SETTLED,
        timeout: float = 300.0,
        on_event: Callable[[FeedEventOut], None] | None = None,
    ) -> MessageOut:
        """Follow one message on the feed (from its first state) until it reaches one of
        `until`; TimeoutError after `timeout` seconds."""
        wanted = set(until)
        for event in self.watch(message_id=message_id, backlog=100, timeout=timeout):
            if on_event is not None:
                on_event(event)
            if event.state in wanted:
                return self.message(message_id)
        raise TimeoutError(f"message {message_id} reached none of {sorted(wanted)} in {timeout}s")


class AsyncHubClient:
    """The hub's REST API, for asyncio. Same calls as HubClient, awaited."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        response = await self._http.request(
            call.method, call.path, params=call.params, json=call.body
        )
        return _answer(call, response)

    async def status(self) -> StatusOut:
        return await self._run(_Calls.status())

    async def chains(self) -> list[ChainOut]:
        return await self._run(_Calls.chains())

    async def chain(self, name: str) -> ChainOut:
        return await self._run(_Calls.chain(name))

    async def register_chain(self, body: ChainCreate) -> ChainOut:
        return await self._run(_Calls.register_chain(body))

    async def update_chain(self, name: str, body: ChainPatch) -> ChainOut:
        return await self._run(_Calls.update_chain(name, body))

    async def routes(self) -> list[RouteOut]:
        return await self._run(_Calls.routes())

    async def route(self, route_id: int) -> RouteOut:
        return await self._run(_Calls.route(route_id))

    async def create_route(self, src: str, dst: str) -> RouteOut:
        return await self._run(_Calls.create_route(src, dst))

    async def update_route(self, route_id: int, body: RoutePatch) -> RouteOut:
        return await self._run(_Calls.update_route(route_id, body))

    async def assets(self) -> list[AssetOut]:
        return await self._run(_Calls.assets())

    async def asset(self, symbol: str) -> AssetOut:
        return await self._run(_Calls.asset(symbol))

    async def register_asset(self, body: AssetCreate) -> AssetOut:
        return await self._run(_Calls.register_asset(body))

    async def message(self, message_id: str) -> MessageOut:
        return await self._run(_Calls.message(message_id))

    async def messages(self, **filters: Any) -> MessagePage:
        return await self._run(_Calls.messages(**filters))

    async def iter_messages(self, **filters: Any) -> AsyncIterator[MessageOut]:
        cursor = None
        while True:
            page = await self.messages(**filters, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def transfer(self, message_id: str) -> TransferOut:
        return await self._run(_Calls.transfer(message_id))

    async def transfers(self, src_tx_hash: str) -> list[TransferOut]:
        return await self._run(_Calls.transfers(src_tx_hash))

    async def search(self, query: str, limit: int = 50) -> SearchOut:
        return await self._run(_Calls.search(query, limit))

    async def post_attestation(self, message_id: str, signature: str) -> AttestationAccepted:
        return await self._run(_Calls.post_attestation(message_id, signature))

    async def retry(self, message_id: str) -> MessageOut:
        return await self._run(_Calls.retry(message_id))

    async def return_transfer(self, message_id: str) -> TransferOut:
        return await self._run(_Calls.return_transfer(message_id))

    async def alerts(self) -> list[AlertOut]:
        return await self._run(_Calls.alerts())

    async def metrics(self) -> str:
        return await self._run(_Calls.metrics())

    async def watch(
        self,
        *,
        message_id: str | None = None,
        chain: str | None = None,
        backlog: int = 0,
        after: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[FeedEventOut]:
        """As HubClient.watch."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sse = _Sse(last_id=after)
        while deadline is None or time.monotonic() < deadline:
            params = _feed_params(message_id, chain, backlog, sse.last_id)
            try:
                async for event in self._stream(params, sse, deadline):
                    yield event
            except (httpx.TransportError, httpx.RemoteProtocolError):
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _stream(
        self, params: dict[str, Any], sse: _Sse, deadline: float | None
    ) -> AsyncIterator[FeedEventOut]:
        timeout = httpx.Timeout(10.0, read=_read_timeout(deadline))
        async with self._http.stream("GET", "/v1/feed", params=params, timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            async for text in response.aiter_lines():
                event = sse.line(text)
                if event is not None:
                    yield event
                if deadline is not None and time.monotonic() >= deadline:
                    return

    async def wait_for(
        self,
        message_id: str,
        until: Iterable[str] = SETTLED,
        timeout: float = 300.0,
        on_event: Callable[[FeedEventOut], None] | None = None,
    ) -> MessageOut:
        wanted = set(until)
        async for event in self.watch(message_id=message_id, backlog=100, timeout=timeout):
            if on_event is not None:
                on_event(event)
            if event.state in wanted:
                return await self.message(message_id)
        raise TimeoutError(f"message {message_id} reached none of {sorted(wanted)} in {timeout}s")
