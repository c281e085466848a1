"""The RPC network policy: which URLs the hub agrees to contact for a chain.

Registering a chain makes the hub open connections to URLs a caller chose, so a public
deployment should refuse loopback and private ranges (server-side request forgery).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from hub.domain.errors import InvalidInputError
from hub.settings import Settings

_ENV_REF = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class NetworkPolicy:
    allowed_schemes: tuple[str, ...] = ("http", "https")
    allow_private: bool = True
    allowed_hosts: tuple[str, ...] = ()
    denied_hosts: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkPolicy:
        return cls(
            allowed_schemes=tuple(settings.rpc_allowed_schemes),
            allow_private=settings.rpc_allow_private,
            allowed_hosts=tuple(settings.rpc_allowed_hosts),
            denied_hosts=tuple(settings.rpc_denied_hosts),
        )

    def check(self, url: str) -> None:
        """Raise InvalidInputError naming the URL and the rule it breaks."""
        parts = urlsplit(expand_env(url))
        shown = redact_url(url)
        if parts.scheme not in self.allowed_schemes:
            allowed = ", ".join(self.allowed_schemes)
            raise InvalidInputError(f"RPC URL {shown}: scheme must be one of {allowed}")
        host = (parts.hostname or "").lower()
        if not host:
            raise InvalidInputError(f"RPC URL {shown} has no host")
        if _matches(host, self.denied_hosts):
            raise InvalidInputError(f"RPC URL {shown}: host {host} is denied by the network policy")
        if self.allowed_hosts and not _matches(host, self.allowed_hosts):
            raise InvalidInputError(f"RPC URL {shown}: host {host} is not in the allowed hosts")
        if not self.allow_private and _is_private(host):
            raise InvalidInputError(
                f"RPC URL {shown}: host {host} is a loopback or private address, "
                "which the network policy refuses (HUB_RPC_ALLOW_PRIVATE=false)"
            )


def _matches(host: str, patterns: tuple[str, ...]) -> bool:
    return any(
        host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in map(str.lower, patterns)
    )


def _is_private(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # unresolvable: the reachability check will refuse it by name
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return True
    return False


def expand_env(url: str) -> str:
    """Replace ${NAME} with the environment's value, so an API key in a URL stays out of the
    database: the hub stores the reference, not the key."""

    def _value(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            raise InvalidInputError(f"RPC URL refers to ${{{name}}}, which is not set")
        return value

    return _ENV_REF.sub(_value, url)


def redact_url(url: str) -> str:
    """The URL as shown in responses and logs: no password, no query values."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = "&".join(f"{kv.split('=', 1)[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, rpc_urls: list[str]) -> str:
    """Adapter errors name the URLs they used, which are expanded: show the redacted form."""
    for url in rpc_urls:
        try:
            expanded = expand_env(url)
        except InvalidInputError:
            continue
        text = text.replace(expanded, redact_url(url))
    return text
