"""What the bad-input tests share: an API process of their own on a registered devnet, real
API keys of each role, and a fingerprint of every registry table to prove a refusal wrote
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.models import ApiKey, Chain, utcnow
from hub.domain.states import MessageState
from hub.services.bootstrap import register_devnet
from hub.services.keys import create_key, hash_key
from hub.services.netpolicy import NetworkPolicy
from tests.conftest import REGISTRY_TABLES, start_api
from tests.integration.test_relay_services import add_message

# Registering a chain makes the hub contact the URLs a caller gave: a fuzzer's URLs must
# reach nothing but this machine.
LOCKED_DOWN = {"HUB_RPC_ALLOWED_HOSTS": '["127.0.0.1"]', "HUB_RPC_TIMEOUT": "2"}
TABLES = [t.strip() for t in REGISTRY_TABLES.split(",")]


@dataclass
class Target:
    url: str
    db_url: str
    log: Path
    keys: dict[str, str]
    messages: dict[str, str]
    known: dict[str, Any]  # a path parameter's name -> a resource that exists

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def truncate(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {REGISTRY_TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()


def seed_messages(session: Session) -> dict[str, str]:
    """A message parked as failed and one waiting for attestations, alpha -> beta."""
    chain = {c.name: c for c in session.scalars(select(Chain))}
    alpha, beta = chain["alpha"], chain["beta"]
    failed = add_message(session, alpha, beta, MessageState.FAILED, attempts=5)
    finalized = add_message(session, alpha, beta, MessageState.FINALIZED)
    return {"failed": failed.id, "finalized": finalized.id}


KEY_ROLES = {"admin": "admin", "operator": "operator", "revoked": "admin"}


def make_keys(session: Session) -> dict[str, str]:
    """Keys as `islands keys create --role ROLE` makes them (the same service call), and a
    revoked admin key (the hub has no revoke command yet: an operator sets revoked_at)."""
    keys = {name: create_key(session, role, actor="test") for name, role in KEY_ROLES.items()}
    session.execute(
        update(ApiKey)
        .where(ApiKey.key_hash == hash_key(keys["revoked"]))
        .values(revoked_at=utcnow())
    )
    return keys


def prepare(db_url: str, devnet_doc: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """A fresh registry: the devnet's chains, routes and asset, two messages, the keys."""
    truncate(db_url)
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as session:
        register_devnet(session, devnet_doc, "test", NetworkPolicy(allow_private=True), 5.0)
        messages = seed_messages(session)
        keys = make_keys(session)
    engine.dispose()
    return keys, messages


@contextmanager
def guarded_api(db_url: str, devnet_doc: dict[str, Any], log: Path) -> Iterator[Target]:
    """A fresh registry (the devnet's chains, routes and asset), keys of each role, and an
    API process with a network policy that keeps a fuzzer's URLs on this machine."""
    keys, messages = prepare(db_url, devnet_doc)
    known = {"name": "beta", "symbol": "ITT", "route_id": 1, "message_id": messages["failed"]}
    proc, url = start_api(db_url, log, **LOCKED_DOWN)
    try:
        yield Target(url, db_url, log, keys, messages, known)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Fingerprint:
    """One hash per registry table, over every row: equal fingerprints, no write."""

    def __init__(self, db_url: str) -> None:
        dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._sql = " UNION ALL ".join(
            f"SELECT '{t}', md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "  # noqa: S608
            f"FROM {t} r"
            for t in TABLES
        )

    def take(self) -> dict[str, str]:
        return {str(name): str(digest) for name, digest in self._conn.execute(self._sql)}

    def close(self) -> None:
        self._conn.close()


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [t for t in before if before[t] != after[t]]
