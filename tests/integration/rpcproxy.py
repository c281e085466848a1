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
        self.lag = 0  # answer as a node this many blocks behind the real one
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
        if self.lag:
            return self._lagging(body)
        answer = self._client.post(self.upstream, json=body).json()
        if isinstance(body, list):
            by_id = {a.get("id"): a for a in answer}
            return [self._rewrite(call, by_id.get(call.get("id"), {})) for call in body]
        return self._rewrite(body, answer)

    def _lagging(self, body: Any) -> Any:
        """Answer as a node `lag` blocks behind: its head is lower, later blocks, logs,
        receipts and state do not exist yet (transactions are still passed on)."""
        head = int(self.node("eth_blockNumber"), 16) - self.lag
        calls = body if isinstance(body, list) else [body]
        answers = []
        for call in calls:
            known, result = lagged_call(call, head)
            if known is None:
                answer = {"jsonrpc": "2.0", "id": call.get("id"), "result": result}
            else:
                answer = self._client.post(self.upstream, json=known).json()
                answer = lagged_answer(call, answer, head)
            answers.append(self._rewrite(call, answer))
        return answers if isinstance(body, list) else answers[0]

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


_LATEST = ("latest", "pending", "safe", "finalized")
_AT_BLOCK = ("eth_getTransactionCount", "eth_call", "eth_getBalance", "eth_getCode")


def lagged_call(call: Call, head: int) -> tuple[Call | None, Any]:
    """The call a node at `head` would answer, or (None, its answer) when it knows nothing."""
    method, params = call.get("method"), list(call.get("params") or [])
    if method == "eth_blockNumber":
        return None, hex(head)
    if method == "eth_getBlockByNumber":
        number = head if params[0] in _LATEST else int(params[0], 16)
        if number > head:
            return None, None
        params[0] = hex(number)
    elif method == "eth_getLogs":
        flt = dict(params[0])
        to = flt.get("toBlock", "latest")
        to_block = head if to in _LATEST else min(int(to, 16), head)
        if "blockHash" not in flt and int(flt.get("fromBlock", "0x0"), 16) > to_block:
            return None, []
        if "blockHash" not in flt:
            flt["toBlock"] = hex(to_block)
        params[0] = flt
    elif method in _AT_BLOCK and len(params) >= 2 and params[-1] in _LATEST:
        params[-1] = hex(head)
    elif method == "eth_estimateGas":
        params = [params[0], hex(head)]
    return {**call, "params": params}, None


def lagged_answer(call: Call, answer: Any, head: int) -> Any:
    """Hide what a node at `head` has not seen: receipts and blocks above it."""
    result = answer.get("result")
    method = call.get("method")
    if method in ("eth_getTransactionReceipt", "eth_getBlockByHash") and result:
        number = result["blockNumber"] if "blockNumber" in result else result["number"]
        return {**answer, "result": None} if int(number, 16) > head else answer
    return answer
