"""Shared fixtures: a fresh Postgres database per run, the API as a real server process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytest_plugins = ["tests.fixtures.chains"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN_TOKEN = "test-admin-" + uuid.uuid4().hex
RPC_SECRET = "rpc-secret-" + uuid.uuid4().hex  # stands for a provider's API key in a URL

# A suite started in the background by a shell without job control inherits SIGINT ignored,
# and so does every process it starts: the tests that stop a CLI with Ctrl-C (SIGINT) then
# waited for it in vain. Handled signals are reset to the default at exec, ignored ones not.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own, on the server HUB_TEST_DATABASE_URL names; dropped afterwards."""
    base = make_url(os.environ.get("HUB_TEST_DATABASE_URL", DEFAULT_TEST_DB))
    name = f"islands_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_pg(pg_url: str) -> str:
    from hub.db.migrate import upgrade

    upgrade(pg_url)
    return pg_url


REGISTRY_TABLES = (
    "audit_log, asset_deployments, assets, routes, chains, api_keys, message_events, "
    "attestation_refusals, attestations, transfers, messages, cursors, validator_sets, "
    "deliveries, leases, alerts"
)


@pytest.fixture
def clean_db(migrated_pg: str) -> Iterator[str]:
    """Empty registry tables before a test (the API server keeps running)."""
    engine = create_engine(migrated_pg)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {REGISTRY_TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield migrated_pg


def hub_env(database_url: str, **extra: str) -> dict[str, str]:
    """A hub process's environment. The tests' chains are anvil on loopback, which the
    network policy refuses by default: these processes allow private addresses explicitly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        {
            "HUB_DATABASE_URL": database_url,
            "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "HUB_RPC_ALLOW_PRIVATE": "true",
        }
    )
    env.update(extra)
    return env


def start_api(
    database_url: str, log_path: Path, **extra_env: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "hub.api.main:app", "--port", str(port)]
    log = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=hub_env(database_url, **extra_env), stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a loaded machine starts Python slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited early: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the API did not answer in 60 s: {log_path.read_text()}")


@pytest.fixture(scope="session")
def api_url(migrated_pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The REST API as its own uvicorn process on the test database."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    proc, url = start_api(migrated_pg, log, HUB_RPC_SECRET_TEST=RPC_SECRET)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def devnet_doc(anvil_devnet: Any) -> dict[str, Any]:
    """The devnet.json of the session's three-chain devnet, as a user reads it."""
    return dict(json.loads(anvil_devnet.json_path.read_text()))


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def client(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as c:
        yield c


TESTS = Path(__file__).parent
# Packages whose tests share one stack of processes (a package-scoped fixture).
SHARED_STACKS = {"faults", "conformance"}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`make test` runs `-n 2`), a package whose tests share a stack runs
    on one worker, so its stack starts once; other tests go by file. (xdist's own
    `--dist loadgroup` did not keep a group on one worker here.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByStack(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return stack_group(nodeid.split("::", maxsplit=1)[0])

    return ByStack(config, log)


def stack_group(path: str) -> str:
    """tests/integration/relay/test_x.py -> tests/integration/relay; tests/unit/test_y.py ->
    itself."""
    parts = Path(path).parts
    if len(parts) > 1 and parts[1] in SHARED_STACKS:
        return "/".join(parts[:2])
    if len(parts) > 3 and parts[1] == "integration":
        return "/".join(parts[:3])
    return path
