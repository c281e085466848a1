"""What a relaying process holds: settings, the session factory and its chain adapters.

Built once where a process starts (after a Celery worker forks), never at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from adapters.base import ChainAdapter
from adapters.registry import create_adapter
from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.models import Chain
from hub.services.chains import adapter_for
from hub.services.netpolicy import NetworkPolicy, redact_url
from hub.settings import Settings


@dataclass
class RelayContext:
    settings: Settings
    sessions: sessionmaker[Session]
    # family, URLs, quorum, and whether they are a validator's own (not under the policy)
    _adapters: dict[tuple[str, tuple[str, ...], int, bool], ChainAdapter] = field(
        default_factory=dict
    )

    @classmethod
    def start(cls, settings: Settings) -> RelayContext:
        return cls(settings, make_sessionmaker(make_engine(settings.database_url)))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    def adapter(self, chain: Chain) -> ChainAdapter:
        """The adapter on a chain's registered URLs, kept for the process (it pools
        connections); they are under the network policy at every connection."""
        key = (chain.family, tuple(chain.rpc_urls), 1, False)
        if key not in self._adapters:
            policy = NetworkPolicy.from_settings(self.settings)
            timeout = self.settings.rpc_timeout
            self._adapters[key] = adapter_for(chain.family, list(chain.rpc_urls), timeout, policy)
        return self._adapters[key]

    def own_adapter(self, family: str, rpc_urls: tuple[str, ...], quorum: int) -> ChainAdapter:
        """An adapter on endpoints a validator configured itself (never the registry's): its
        operator's choice, so not under the hub's network policy; shown redacted."""
        key = (family, rpc_urls, quorum, True)
        if key not in self._adapters:
            self._adapters[key] = create_adapter(
                family,
                rpc_urls,
                timeout=self.settings.rpc_timeout,
                quorum=quorum,
                shown_urls=[redact_url(u) for u in rpc_urls],
            )
        return self._adapters[key]
