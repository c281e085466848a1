"""The relay stack for these tests: its own devnet, database and Redis db, real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.evm.devnet import Devnet, up
from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.migrate import upgrade
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from tests.conftest import fresh_database, start_api
from tests.fixtures.chains import with_free_ports
from tests.fixtures.redisdb import claimed_redis_url
from tests.integration.relay.stack import RELAY_ENV, Stack, wait_for

BLOCK_TIME = 0.25


@pytest.fixture(scope="package")
def relay_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    state = tmp_path_factory.mktemp("relay-devnet")
    devnet = with_free_ports(3, lambda base: up(3, base, state, block_time=BLOCK_TIME))
    yield devnet
    devnet.stop()


@pytest.fixture(scope="package")
def stack(relay_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("relay-logs")
    doc = relay_devnet.to_json()
    with claimed_redis_url() as redis_url, fresh_database() as db_url:
        upgrade(db_url)
        engine = make_engine(db_url)
        with transaction(make_sessionmaker(engine)) as session:
            register_devnet(session, doc, "test", NetworkPolicy(allow_private=True), 5.0)
        engine.dispose()
        api, url = start_api(db_url, log_dir / "api.log", **RELAY_ENV)
        s = Stack(doc=doc, api=url, db_url=db_url, redis_url=redis_url, log_dir=log_dir)
        s.start_validators()
        s.start_relay_worker()
        s.start_beat()
        wait_for("every chain scanned once", lambda: _scanned(db_url) == 3, timeout=90)
        try:
            yield s
        finally:
            s.stop()
            _dump(db_url, log_dir / "db-at-teardown.txt")
            api.terminate()
            api.wait(timeout=10)


def _scanned(db_url: str) -> int:
    """Chains whose validator set a scan has read: the workers are up and working."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM validator_sets")).scalar_one()
    engine.dispose()
    return int(n)


def _dump(db_url: str, path: Path) -> None:
    """What the database held at the end, for whoever reads a failed run's logs."""
    queries = {
        "messages by state": "SELECT dst_chain_id, state, count(*) FROM messages "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        "deliveries": "SELECT id, dst_chain_id, tx_nonce, status, left(tx_hash, 12), "
        "json_array_length(message_ids::json), sent_at FROM deliveries ORDER BY id",
        "leases": "SELECT * FROM leases",
        "alerts": "SELECT kind, subject, message FROM alerts",
    }
    engine = make_engine(db_url)
    with engine.connect() as conn, path.open("w") as out:
        for title, sql in queries.items():
            out.write(f"== {title}\n")
            for row in conn.execute(text(sql)):
                out.write(f"{tuple(row)}\n")
    engine.dispose()


@pytest.fixture(scope="package")
def chains(stack: Stack) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in stack.doc["chains"]}
