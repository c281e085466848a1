"""Stand-ins for what sits between the hub and a node: an RPC provider that wants its key in
the path (as Infura's `/v3/<key>`), and a server that answers with a redirect. Both are real
HTTP servers on loopback, in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def keyed_provider(node_url: str, key: str) -> Iterator[str]:
    """JSON-RPC at `/v3/<key>` forwarded to the node; any other path is 401, as a provider
    answers a wrong key. Yields the provider's base URL; the provider stops on exit."""

    class Handler(_Quiet):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path.split("?", 1)[0] != f"/v3/{key}":
                self.send_response(401)
                self.end_headers()
                return
            answer = httpx.post(
                node_url, content=body, headers={"content-type": "application/json"}, timeout=30
            )
            self.send_response(answer.status_code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    with _serving(Handler) as url:
        yield url


@contextmanager
def redirecting(target: str, status: int = 307) -> Iterator[str]:
    """Every request is answered with `status` and `Location: target`."""

    class Handler(_Quiet):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(status)
            self.send_header("location", target)
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = do_POST  # noqa: N815 - http.server's naming

    with _serving(Handler) as url:
        yield url
