"""The fault stack: its own devnet, its own Postgres and Redis (private, so killing them harms
no other test run), each chain behind a fault-injecting RPC proxy, real processes.

The quick fault tests share one stack and leave it as they found it (at rest, balanced).
The soak (`-m soak`, `make soak`) runs only when asked for."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.evm.devnet import Devnet, up
from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.migrate import upgrade
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from tests.conftest import free_port
from tests.faults.harness import LIBFAKETIME, Chain, FaultStack, prepare_user
from tests.faults.services import PrivatePostgres, PrivateRedis
from tests.fixtures.chains import with_free_ports
from tests.integration.relay.stack import wait_for
from tests.integration.rpcproxy import RpcProxy

BLOCK_TIME = 0.25
# Faster failure handling than the defaults, so a test sees retries and failover in seconds.
FAULT_ENV = {
    "HUB_RPC_TIMEOUT": "2",
    "HUB_MAX_IN_FLIGHT": "4",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak runs only when selected with `-m soak`."""
    if "soak" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the soak runs with -m soak (make soak)")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)


@pytest.fixture(scope="package")
def private_services() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    root = Path(tempfile.mkdtemp(prefix="islands-faults-"))
    root.chmod(0o755)  # postgres runs as its own user and must reach its directory
    pg, broker = PrivatePostgres(root / "pg"), PrivateRedis(root)
    try:
        pg.init()
        pg.start()
        broker.start()
        yield pg, broker
    finally:
        broker.kill()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def fault_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    state = tmp_path_factory.mktemp("fault-devnet")
    devnet = with_free_ports(3, lambda base: up(3, base, state, block_time=BLOCK_TIME))
    yield devnet
    devnet.stop()


@pytest.fixture(scope="package")
def fault_stack(
    fault_devnet: Devnet,
    private_services: tuple[PrivatePostgres, PrivateRedis],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultStack]:
    pg, broker = private_services
    log_dir: Path = tmp_path_factory.mktemp("fault-logs")
    doc = fault_devnet.to_json()
    # The hub reaches each chain through two endpoints: a fault-injecting proxy first, a
    # plain one second (a test may make the hub go back to the first by dropping the second
    # for a moment). Validators use their own configuration (the nodes), as they would.
    proxies = {}
    for c in doc["chains"]:
        proxies[c["name"]] = RpcProxy(c["rpc_url"]).__enter__()
        proxies[c["name"] + "/2"] = RpcProxy(c["rpc_url"]).__enter__()
    registered = {
        **doc,
        "chains": [
            {**c, "rpc_urls": [proxies[c["name"]].url, proxies[c["name"] + "/2"].url]}
            for c in doc["chains"]
        ],
    }
    db_url = pg.create_database("hub")
    upgrade(db_url)
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as session:
        register_devnet(session, registered, "test", NetworkPolicy(allow_private=True), 5.0)
    engine.dispose()
    port = free_port()
    # The hub's processes run under a clock a test may move (test_clock), when the machine
    # has libfaketime; at "+0" it is the real time.
    clock = log_dir / "clock-offset"
    clock.write_text("+0\n")
    stack = FaultStack(
        doc=doc,
        api=f"http://127.0.0.1:{port}",
        db_url=db_url,
        redis_url=broker.url,
        log_dir=log_dir,
        pg=pg,
        broker=broker,
        proxies=proxies,
        api_port=port,
        extra_env=dict(FAULT_ENV),
        clock_file=clock if LIBFAKETIME.exists() else None,
    )
    try:
        stack.start_all()
        wait_for("every chain scanned once", lambda: _scanned(db_url) == 3, timeout=120)
        yield stack
    finally:
        stack.stop()
        for proxy in proxies.values():
            proxy.__exit__()


@pytest.fixture(scope="package")
def fault_chains(fault_stack: FaultStack) -> dict[str, Chain]:
    chains = {c["name"]: c for c in fault_stack.doc["chains"]}
    prepare_user(fault_stack, chains)
    return chains


def _scanned(db_url: str) -> int:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM validator_sets")).scalar_one()
    engine.dispose()
    return int(n)
