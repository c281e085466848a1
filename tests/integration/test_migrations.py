"""Migrations build the schema on Postgres and SQLite, and agree with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from hub.db.migrate import check, upgrade
from hub.db.models import Base

pytestmark = pytest.mark.integration


def test_alembic_check_on_postgres(migrated_pg: str) -> None:
    check(migrated_pg)  # raises when models and migrations drift apart
    engine = create_engine(migrated_pg)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    check(url)
    engine = create_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
