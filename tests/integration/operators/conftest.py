"""The distributed hub for operators' tests: API, a prefork relay worker and a validator
worker that serve /metrics, a second validator run from outside the hub (`islands validator
run`, over the API only), and beat, on Postgres and Redis, over a devnet of three chains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapters.evm.devnet import Devnet, up
from hub.client import HubClient
from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.migrate import upgrade
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from tests.conftest import ROOT, free_port, fresh_database, start_api
from tests.fixtures.chains import with_free_ports
from tests.fixtures.redisdb import claimed_redis_url
from tests.integration.relay.stack import RELAY_ENV, Stack, wait_for

BLOCK_TIME = 0.25
# The outside validator must never reach the hub's database: it gets one that does not exist.
NO_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@dataclass
class Ops:
    """The running stack, and where each process serves its metrics."""

    stack: Stack
    metrics: dict[str, str]  # process name -> its /metrics URL
    multiproc_dir: Path  # the relay worker's PROMETHEUS_MULTIPROC_DIR

    @property
    def api(self) -> str:
        return self.stack.api

    @property
    def doc(self) -> dict[str, Any]:
        return self.stack.doc

    def client(self) -> HubClient:
        return HubClient(self.api)

    def chain(self, name: str) -> dict[str, Any]:
        return next(c for c in self.doc["chains"] if c["name"] == name)

    def account(self, role: str, index: int = 0) -> dict[str, str]:
        return [a for a in self.doc["accounts"] if a["role"] == role][index]

    def sql(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        engine = make_engine(self.stack.db_url)
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text(query), params)]
        engine.dispose()
        return rows

    def islands(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The `islands` command as an operator runs it, against this hub's API."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "islands"), *args],
            cwd=ROOT,
            env=self.cli_env(**env),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "ISLANDS_"))}
        env.update({"ISLANDS_API": self.api, "HUB_DATABASE_URL": NO_DATABASE, "COLUMNS": "200"})
        env.update(extra)
        return env


@pytest.fixture(scope="package")
def ops_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    state = tmp_path_factory.mktemp("ops-devnet")
    devnet = with_free_ports(3, lambda base: up(3, base, state, block_time=BLOCK_TIME))
    yield devnet
    devnet.stop()


@pytest.fixture(scope="package")
def ops(ops_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    log_dir: Path = tmp_path_factory.mktemp("ops-logs")
    doc = ops_devnet.to_json()
    with claimed_redis_url() as redis_url, fresh_database() as db_url:
        upgrade(db_url)
        engine = make_engine(db_url)
        with transaction(make_sessionmaker(engine)) as session:
            register_devnet(session, doc, "test", NetworkPolicy(allow_private=True), 5.0)
        engine.dispose()
        api, url = start_api(db_url, log_dir / "api.log", **RELAY_ENV)
        s = Stack(doc=doc, api=url, db_url=db_url, redis_url=redis_url, log_dir=log_dir)
        found = _start(s, log_dir)
        wait_for("every chain scanned once", lambda: _scanned(db_url) == 3, timeout=90)
        try:
            yield found
        finally:
            s.stop()
            api.terminate()
            api.wait(timeout=15)


def _start(s: Stack, log_dir: Path) -> Ops:
    ports = {name: free_port() for name in ("relay", "validator-1", "validator-2")}
    multiproc = log_dir / "relay-metrics"
    s.celery(
        "relay",
        [
            "worker",
            "-Q",
            "relay,deliver",
            "-c",
            "2",
            "-n",
            f"ops-relay-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        HUB_RELAYER_KEY=s.key("relayer"),
        HUB_GUARDIAN_KEY=s.key("deployer"),
        HUB_METRICS_PORT=str(ports["relay"]),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        HUB_VALIDATOR_QUEUES='["validator-1"]',
    )
    config = s.validator_config()
    s.celery(
        "validator-1",
        [
            "worker",
            "-Q",
            "validator-1",
            "-c",
            "1",
            "--pool",
            "solo",
            "-n",
            f"ops-validator-1-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        HUB_VALIDATOR_KEY=s.key("validator", 0),
        HUB_VALIDATOR_CONFIG=str(config),
        HUB_METRICS_PORT=str(ports["validator-1"]),
    )
    _outside_validator(s, config, ports["validator-2"])
    s.celery(
        "beat",
        ["beat", "-s", str(log_dir / "beat-schedule"), "--loglevel", "WARNING"],
        HUB_VALIDATOR_QUEUES='["validator-1"]',
    )
    metrics = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
    metrics["api"] = f"{s.api}/metrics"
    return Ops(stack=s, metrics=metrics, multiproc_dir=multiproc)


def _outside_validator(s: Stack, config: Path, port: int) -> None:
    """Validator 2 of the gateways' set, run as an outside organisation runs it: its key and
    its own file, the hub's API, and no way to the hub's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "ISLANDS_"))}
    env.update(
        HUB_VALIDATOR_KEY=s.key("validator", 1),
        HUB_DATABASE_URL=NO_DATABASE,
        HUB_LOG_LEVEL="INFO",
    )
    log = (s.log_dir / "validator-2.log").open("ab")
    s.procs["validator-2"] = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "islands"),
            "validator",
            "run",
            "--config",
            str(config),
            "--api",
            s.api,
            "--every",
            "0.3",
            "--metrics-port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _scanned(db_url: str) -> int:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM validator_sets")).scalar_one()
    engine.dispose()
    return int(n)


def user_key(ops: Ops) -> str:
    return ops.account("user")["private_key"]


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))
