"""Migrations build the schema on Postgres and SQLite, and agree with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from hub.db.migrate import alembic_config, check, upgrade
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


# Rows as a hub before 0005 stored them: foreign keys to chains.id named *_chain_id.
_BEFORE_0005 = [
    "INSERT INTO chains (id, name, chain_id, family, rpc_urls, finality, gateway_address,"
    " bridge_address, status, created_at, updated_at) VALUES"
    " (1, 'alpha', 31337, 'evm', '[]', '0', '0xg1', '0xb1', 'active', :now, :now),"
    " (2, 'beta', 31338, 'evm', '[]', '0', '0xg2', '0xb2', 'active', :now, :now)",
    "INSERT INTO routes (id, src_chain_id, dst_chain_id, status, max_gas, created_at,"
    " updated_at) VALUES (1, 1, 2, 'active', 500000, :now, :now)",
    "INSERT INTO assets (id, symbol, home_chain_id, home_token, status, created_at)"
    " VALUES (1, 'ITT', 1, '0xt', 'active', :now)",
    "INSERT INTO asset_deployments (id, asset_id, chain_id, token_address) VALUES (1, 1, 2, '0xw')",
    "INSERT INTO cursors (chain_id, start_block, block_number, block_hash, final_block,"
    " final_hash, updated_at) VALUES (2, 5, 9, '0xh9', 8, '0xh8', :now)",
    "INSERT INTO validator_sets (chain_id, epoch, threshold, validators, updated_at)"
    " VALUES (2, 3, 2, '[]', :now)",
]


def _upgrade_with_rows(url: str) -> None:
    """A database at 0004 holding a registry, upgraded: every row is still there, under the
    new names, and the models and migrations still agree."""
    from datetime import UTC, datetime

    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from hub.db.models import Asset, Cursor, Route, ValidatorSet

    upgrade(url, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in _BEFORE_0005:
            conn.execute(text(statement), {"now": datetime.now(UTC)})
    upgrade(url)
    check(url)
    with Session(engine) as session:
        route = session.get(Route, 1)
        assert route is not None and (route.src_chain_key, route.dst_chain_key) == (1, 2)
        assert (route.src.name, route.dst.chain_id) == ("alpha", 31338)
        asset = session.get(Asset, 1)
        assert asset is not None and asset.home_chain_key == 1
        assert [(d.chain_key, d.chain.name) for d in asset.deployments] == [(2, "beta")]
        cursor = session.get(Cursor, 2)
        assert cursor is not None and (cursor.block_number, cursor.final_hash) == (9, "0xh8")
        vset = session.get(ValidatorSet, 2)
        assert vset is not None and vset.epoch == 3
    command.downgrade(alembic_config(url), "0004")  # and back, rows and all
    columns = {c["name"] for c in inspect(engine).get_columns("routes")}
    assert {"src_chain_id", "dst_chain_id"} <= columns
    upgrade(url)
    check(url)
    engine.dispose()


def test_chain_keys_renamed_with_data_on_sqlite(tmp_path: Path) -> None:
    _upgrade_with_rows(f"sqlite:///{tmp_path / 'hub.db'}")


def test_chain_keys_renamed_with_data_on_postgres() -> None:
    from tests.conftest import fresh_database

    with fresh_database() as url:
        _upgrade_with_rows(url)
