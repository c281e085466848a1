"""Adapter lookup by family name through the entry-point group `islands.adapters`.

Looked up lazily, as SQLAlchemy finds its dialects: a family's package is imported only
when a chain of that family is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from adapters.base import ChainAdapter

ENTRY_POINT_GROUP = "islands.adapters"


class UnknownFamilyError(LookupError):
    """No adapter is registered for a family name."""


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def families() -> list[str]:
    """The family names that have an adapter installed."""
    return sorted(_entry_points())


@cache
def adapter_class(family: str) -> type[ChainAdapter]:
    """The adapter class of a family; raises UnknownFamilyError naming those that exist."""
    found = _entry_points().get(family)
    if found is None:
        known = ", ".join(families()) or "none"
        raise UnknownFamilyError(f"no chain adapter for family {family!r} (known: {known})")
    return cast(type[ChainAdapter], found.load())


def create_adapter(family: str, rpc_urls: Sequence[str], **options: Any) -> ChainAdapter:
    """Build an adapter for one chain from its family and RPC URLs."""
    return adapter_class(family)(list(rpc_urls), **options)  # type: ignore[call-arg]
