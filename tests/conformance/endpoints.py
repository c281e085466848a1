"""Endpoints that behave as some providers do, in front of (or instead of) a real node, each in
a thread of the test process on a free loopback port:

- `SilentEndpoint`: takes connections and never answers (a hung provider): only a timeout ends
  a call to it;
- `ProviderProxy`: forwards JSON-RPC to a node, but refuses eth_getLogs over more than
  `max_log_range` blocks as hosted providers do ("query returned more than 10000 results",
  naming no block count), and, with `refuse_batches`, JSON-RPC batches.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class SilentEndpoint:
    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)  # the kernel completes handshakes; nobody ever reads or answers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self._sock.close()


RANGE_REFUSAL = {"code": -32005, "message": "query returned more than 10000 results"}
BATCH_REFUSAL = {"code": -32600, "message": "batch requests are not supported"}


class ProviderProxy:
    def __init__(
        self, upstream: str, *, max_log_range: int | None = None, refuse_batches: bool = False
    ) -> None:
        self.upstream = upstream
        self.max_log_range = max_log_range
        self.refuse_batches = refuse_batches
        self.refused_ranges = 0
        self.refused_batches = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, body: bytes) -> Any:
        request = urllib.request.Request(  # noqa: S310 - a loopback node of the test
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def _refusal(self, call: Any) -> dict[str, Any] | None:
        if self.max_log_range is None or call.get("method") != "eth_getLogs":
            return None
        query = call["params"][0]
        start, end = query.get("fromBlock", "0x0"), query.get("toBlock", "0x0")
        if not (start.startswith("0x") and end.startswith("0x")):
            return None
        if int(end, 16) - int(start, 16) + 1 <= self.max_log_range:
            return None
        self.refused_ranges += 1
        return {"jsonrpc": "2.0", "id": call.get("id"), "error": RANGE_REFUSAL}

    def _answer(self, body: bytes) -> Any:
        call = json.loads(body)
        if isinstance(call, list):
            if self.refuse_batches:
                self.refused_batches += 1
                return {"jsonrpc": "2.0", "id": None, "error": BATCH_REFUSAL}
            return self._forward(body)
        return self._refusal(call) or self._forward(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                data = json.dumps(proxy._answer(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        return Handler
