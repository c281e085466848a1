"""The RPC network policy: which URLs and addresses the hub agrees to contact for a chain,
how a URL may name a secret, and how a URL is shown.

Registering a chain makes the hub open connections to URLs a caller chose (server-side
request forgery). So `check` judges a URL whenever an adapter is made for it (its scheme, its
host, an address written in it, its secret references), and the adapter asks `refusal` at
every connection about every address the host name resolves to then, and connects to an
address it checked (no window for DNS rebinding); it never follows a redirect.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from hub.domain.errors import InvalidInputError
from hub.settings import Settings

# `${NAME}` in an RPC URL is filled from the environment only for names with this prefix: any
# other variable of the process (the relayer key, the database password) is not the URL's.
RPC_SECRET_PREFIX = "HUB_RPC_SECRET_"  # noqa: S105 - a name prefix, not a secret
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_SECRET_NAME = re.compile(re.escape(RPC_SECRET_PREFIX) + r"[A-Z0-9_]+")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 ranges that carry an IPv4 address, judged by the address they carry.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class NetworkPolicy:
    allowed_schemes: tuple[str, ...] = ("http", "https")
    allow_private: bool = False
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
        """Raise InvalidInputError naming the URL (redacted) and the rule it breaks."""
        shown = redact_url(url)
        parts = urlsplit(expand_env(url))
        if parts.scheme not in self.allowed_schemes:
            allowed = ", ".join(self.allowed_schemes)
            raise InvalidInputError(f"RPC URL {shown}: scheme must be one of {allowed}")
        host = (parts.hostname or "").lower()
        if not host:
            raise InvalidInputError(f"RPC URL {shown} has no host")
        # A name is judged by the addresses it resolves to when the adapter connects (every
        # time, see `refusal`); an address written in the URL can be judged now.
        problem = self._host_refusal(host)
        if problem is None and _is_address(host):
            problem = self.refusal(host, host)
        if problem:
            raise InvalidInputError(f"RPC URL {shown}: {problem}")

    def refusal(self, host: str, address: str) -> str | None:
        """Why the hub must not connect to `address`, which `host` resolved to; None if it may.
        Adapters ask this at every connection, for every address the host resolved to."""
        problem = self._host_refusal(host.lower())
        if problem or self.allow_private:
            return problem
        if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
            where = f"host {host}" if host == address else f"host {host} resolves to {address},"
            return (
                f"{where} a loopback or private (not public) address, which the network "
                "policy refuses (HUB_RPC_ALLOW_PRIVATE=false)"
            )
        return None

    def _host_refusal(self, host: str) -> str | None:
        if _matches(host, self.denied_hosts):
            return f"host {host} is denied by the network policy"
        if self.allowed_hosts and not _matches(host, self.allowed_hosts):
            return f"host {host} is not in the allowed hosts"
        return None


def _matches(host: str, patterns: tuple[str, ...]) -> bool:
    return any(
        host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in map(str.lower, patterns)
    )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for: IPv4-mapped and -compatible, NAT64
    (64:ff9b::/96; 64:ff9b:1::/48 in both the /96 and the RFC 6052 /48 layout), 6to4, Teredo
    (its server and its client)."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    value = int(address)
    last32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _NAT64 or address in _V4_COMPATIBLE:
        return [last32]
    if address in _NAT64_LOCAL:
        # RFC 6052 for a /48 prefix: 16 bits of IPv4 at bits 48-63, then the u octet, then 16.
        high, low = (value >> 64) & 0xFFFF, (value >> 40) & 0xFFFF
        return [last32, ipaddress.IPv4Address((high << 16) | low)]
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return [address.sixtofour]
    if address in _TEREDO and address.teredo is not None:
        return list(address.teredo)
    return []


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address; an IPv6 address that carries IPv4 addresses is
    judged by those."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded:
            return all(is_public(v4) for v4 in embedded)
    return address.is_global and not address.is_multicast


def env_names(url: str) -> list[str]:
    """The `${NAME}` references in a URL, refusing names outside the rule."""
    names = _ENV_REF.findall(url)
    for name in names:
        if not _SECRET_NAME.fullmatch(name):
            raise InvalidInputError(
                f"RPC URL {redact_url(url)}: ${{{name}}} is not allowed: an RPC URL may refer "
                f"only to environment variables named {RPC_SECRET_PREFIX}<NAME> "
                "(capital letters, digits, _)"
            )
    return names


def expand_env(url: str) -> str:
    """Replace ${HUB_RPC_SECRET_...} with the environment's value, so an API key in a URL stays
    out of the database: the hub stores the reference, not the key."""
    for name in env_names(url):
        if name not in os.environ:
            raise InvalidInputError(f"RPC URL refers to ${{{name}}}, which is not set")
    return _ENV_REF.sub(lambda match: os.environ[match.group(1)], url)


# A path segment that is a key: after /v2/ or /v3/ (Alchemy, Infura and their imitators), a
# reference to a secret, or a long token with digits (hex, base58, UUID keys in a path).
_KEY_AFTER = {"v2", "v3", "key", "apikey", "api-key", "api_key", "token", "auth"}
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~]{16,}")


def _keyish(segment: str, previous: str) -> bool:
    if not segment:
        return False
    if previous.lower() in _KEY_AFTER or "${" in segment or "%" in segment:
        return True
    token = _TOKEN.fullmatch(segment) is not None
    return token and (len(segment) >= 32 or any(c.isdigit() for c in segment))


def redact_url(url: str) -> str:
    """The URL as shown in responses and logs: no user name, password, query value, fragment
    or key-like path segment."""
    parts = urlsplit(url)
    netloc = _ENV_REF.sub("***", parts.netloc)
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = ("***:***@" if ":" in userinfo else "***@") + hostport
    segments = parts.path.split("/")
    path = "/".join(
        "***" if _keyish(seg, segments[i - 1] if i else "") else seg
        for i, seg in enumerate(segments)
    )
    query = "&".join(
        f"{kv.split('=', 1)[0]}=***" if "=" in kv else "***" for kv in parts.query.split("&") if kv
    )
    fragment = "***" if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, path, query, fragment))
