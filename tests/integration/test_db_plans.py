"""Postgres plans the hub's repeated queries for the tables as they are, not once for all.

psycopg prepares a statement it has run five times, and Postgres may then keep one generic
plan for it. A validator's work query planned while the tables were near empty scanned every
attestation once per message when the chain had 5,000 messages: 3 to 7 s a round instead of
40 ms (docs/design-notes.md). Whether Postgres picks the generic plan depends on the rows of
the moment, so the test checks the setting that rules it out, and that it holds on a
connection whose statements are prepared."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from hub.db.engine import make_engine, make_sessionmaker
from hub.services.relay.validator import unsigned

pytestmark = pytest.mark.integration

VALIDATOR = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"


def test_a_repeated_work_query_is_planned_each_time(clean_db: str) -> None:
    engine = make_engine(clean_db)
    try:
        with make_sessionmaker(engine)() as session:
            for _ in range(8):  # past psycopg's prepare threshold and Postgres's five custom plans
                assert list(session.scalars(unsigned(VALIDATOR, [31337, 31338], 500))) == []
            mode = session.execute(text("SHOW plan_cache_mode")).scalar_one()
            plans = session.execute(
                text(
                    "SELECT generic_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%attestation_refusals%'"
                )
            ).scalars()
            assert list(plans) == [0]
        assert mode == "force_custom_plan"
    finally:
        engine.dispose()
