"""What a relaying process holds: settings, the session factory and its chain adapters.

Built once where a process starts (after a Celery worker forks), never at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from adapters.base import ChainAdapter
from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.models import Chain
from hub.services.chains import adapter_for
from hub.services.netpolicy import NetworkPolicy
from hub.settings import Settings


@dataclass
class RelayContext:
    settings: Settings
    sessions: sessionmaker[Session]
    _adapters: dict[tuple[str, tuple[str, ...], bool], ChainAdapter] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: Settings) -> RelayContext:
        return cls(settings, make_sessionmaker(make_engine(settings.database_url)))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    def adapter(self, chain: Chain, rpc_urls: list[str] | None = None) -> ChainAdapter:
        """One adapter per chain and URL set, kept for the process (it pools connections).
        The registered URLs are under the network policy at every connection; a validator's
        own `rpc_urls` are its operator's choice."""
        urls = tuple(rpc_urls or chain.rpc_urls)
        own = bool(rpc_urls)
        key = (chain.family, urls, own)
        if key not in self._adapters:
            policy = None if own else NetworkPolicy.from_settings(self.settings)
            timeout = self.settings.rpc_timeout
            self._adapters[key] = adapter_for(chain.family, list(urls), timeout, policy)
        return self._adapters[key]
