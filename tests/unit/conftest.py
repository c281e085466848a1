"""Fixtures of the unit tests: no services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from hub.db.models import Base


@pytest.fixture
def session() -> Iterator[Session]:
    """An empty hub schema on an in-memory SQLite database."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()
