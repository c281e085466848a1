"""HTTP sessions for JSON-RPC adapters: redirects are never followed, and with an address
guard every connection is checked where it is made.

The guard is asked about every address the host name resolves to, when the connection is
opened, and the socket connects to one of the addresses it allowed: a name that resolves to a
public address when checked and to loopback a moment later (DNS rebinding) cannot slip
through, because there is no second resolution. TLS still verifies the certificate against
the host name.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from adapters.base import AddressGuard


class TransportRefusedError(Exception):
    """A connection the adapter refused to make or to follow; an endpoint failure."""


class AddressRefusedError(TransportRefusedError):
    """The host resolved to an address the guard refuses."""


class RedirectRefusedError(TransportRefusedError):
    """The endpoint answered with a redirect, which is never followed."""


def rpc_session(guard: AddressGuard | None = None) -> requests.Session:
    """A requests session for one RPC endpoint. With a guard, proxies from the environment
    are not used either: through a proxy, the guard could check only the proxy's address."""
    session = requests.Session()
    session.max_redirects = 0
    session.trust_env = guard is None
    adapter = _RpcAdapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _RpcAdapter(HTTPAdapter):
    def __init__(self, guard: AddressGuard | None) -> None:
        self._guard = guard  # set first: HTTPAdapter.__init__ calls init_poolmanager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        if self._guard is not None:
            self.poolmanager.pool_classes_by_scheme = _guarded_pools(self._guard)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        response = super().send(request, stream, timeout, verify, cert, proxies)
        if 300 <= response.status_code < 400:
            response.close()
            raise RedirectRefusedError(
                f"the endpoint answered HTTP {response.status_code} (a redirect); "
                "redirects are never followed"
            )
        return response


def _guarded_pools(guard: AddressGuard) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections resolve, check and connect in one step."""

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, guard)

    class TlsConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, guard)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConnection

    return {"http": Pool, "https": TlsPool}


def _connect(conn: HTTPConnection, guard: AddressGuard) -> socket.socket:
    """What urllib3's `_new_conn` does, with the guard between resolving and connecting."""
    host = conn.host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, conn.port, allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    for info in infos:
        refusal = guard(host, str(info[4][0]))
        if refusal:
            raise AddressRefusedError(f"refused by the network policy: {refusal}")
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            timeout: object = conn.timeout  # urllib3 may leave its "default" sentinel here
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(conn.timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    if isinstance(error, TimeoutError):
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from error
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error
