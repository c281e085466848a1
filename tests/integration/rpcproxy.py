"""A JSON-RPC proxy in front of a real node, for tests: it forwards every call, and a test
may rewrite answers (a hostile provider that forges logs) or inject faults (timeouts, 5xx,
dropped connections, a lagging head).

It runs in a thread of the test process on a free loopback port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Call = dict[str, Any]
# A rewrite sees one call and the node's answer to it, and returns the answer to give.
Rewrite = Callable[[Call, Any], Any]


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rewrites: list[Rewrite] = []
        self.fault: str | None = None  # "timeout", "5xx", "drop" or None
        self.calls = 0
        self._client = httpx.Client(timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def node(self, method: str, *params: Any) -> Any:
        """Ask the node itself (not through the rewrites)."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return self._client.post(self.upstream, json=body).json()["result"]

    def _answer(self, body: Any) -> Any:
        answer = self._client.post(self.upstream, json=body).json()
        if isinstance(body, list):
            by_id = {a.get("id"): a for a in answer}
            return [self._rewrite(call, by_id.get(call.get("id"), {})) for call in body]
        return self._rewrite(body, answer)

    def _rewrite(self, call: Call, answer: Any) -> Any:
        if "result" not in answer:
            return answer
        result = answer["result"]
        for rewrite in self.rewrites:
            result = rewrite(call, result)
        return {**answer, "result": result}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy.calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if proxy.fault == "timeout":
                    time.sleep(60)
                    return
                if proxy.fault == "drop":
                    self.connection.close()
                    return
                if proxy.fault == "5xx":
                    self.send_error(503, "unavailable")
                    return
                data = json.dumps(proxy._answer(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        return Handler
