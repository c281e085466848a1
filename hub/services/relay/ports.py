"""What a relay stage reaches besides its session: the chains (through adapters), its keys and
the settings. The runner builds it; a unit test builds it on fake chains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from adapters.base import ChainAdapter
from hub.db.models import Chain
from hub.settings import Settings


class Adapters(Protocol):
    """Where a stage gets an adapter: on a chain's registered URLs (under the network
    policy), or, for a validator, on endpoints of its own configuration."""

    def adapter(self, chain: Chain) -> ChainAdapter: ...

    def own_adapter(self, family: str, rpc_urls: tuple[str, ...], quorum: int) -> ChainAdapter: ...


@dataclass(frozen=True)
class Ports:
    settings: Settings
    chains: Adapters
    # The relayer's key (deliver, confirm) and the token bridges' guardian key (guard); a
    # stage that needs one is not run without it.
    relayer_key: str | None = field(default=None, repr=False)
    guardian_key: str | None = field(default=None, repr=False)

    def adapter(self, chain: Chain) -> ChainAdapter:
        return self.chains.adapter(chain)

    def holds(self, which: str) -> bool:
        """Whether this process has the key ("relayer" or "guardian")."""
        return (self.relayer_key if which == "relayer" else self.guardian_key) is not None

    def key(self, which: str) -> str:
        found = self.relayer_key if which == "relayer" else self.guardian_key
        if found is None:
            raise LookupError(f"this process has no {which} key")
        return found
