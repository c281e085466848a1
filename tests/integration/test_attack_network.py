"""Attack 9 of issue 6, the network part: the RPC network policy held only at registration.
A registered name could later resolve to loopback (DNS rebinding), redirects to loopback
were followed, and NAT64, 6to4 and Teredo forms of loopback passed. Now every connection is
checked where it is made. Against API processes (one allowing private addresses, as the
other tests' does, one refusing them, as a public deployment does), the relay's adapters,
and a chain run by hand on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from adapters.base import EndpointUnavailableError
from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.models import Chain
from hub.services.relay.context import RelayContext
from hub.settings import Settings
from tests.conftest import start_api
from tests.integration.helpers import deploy, plain_anvil
from tests.integration.provider import redirecting
from tests.integration.test_registry_api import assert_error, registration

pytestmark = pytest.mark.integration

CHAIN_ID = 4444
POLICY = "HUB_RPC_ALLOW_PRIVATE=false"


@pytest.fixture(scope="module")
def own_chain() -> Iterator[dict[str, Any]]:
    with plain_anvil(CHAIN_ID) as url:
        yield {"rpc_url": url, "port": int(url.rsplit(":", 1)[1]), **deploy(url)}


@pytest.fixture(scope="module")
def strict(migrated_pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API process with the default policy of a public deployment: no private addresses."""
    log: Path = tmp_path_factory.mktemp("strict-api") / "api.log"
    proc, url = start_api(migrated_pg, log, HUB_RPC_ALLOW_PRIVATE="false")
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_to_loopback_is_not_followed(
    client: httpx.Client,
    admin: dict[str, str],
    own_chain: dict[str, Any],
    clean_db: str,
    status: int,
) -> None:
    with redirecting(own_chain["rpc_url"], status) as url:
        answer = client.post(
            "/v1/chains",
            json=registration(own_chain, chain_id=CHAIN_ID, rpc_urls=[url]),
            headers=admin,
        )
    assert_error(answer, 422, f"HTTP {status} (a redirect)", "never followed")
    assert client.get("/v1/chains").json() == []


def test_a_name_resolving_to_loopback_is_refused_at_connection_time(
    client: httpx.Client,
    strict: httpx.Client,
    admin: dict[str, str],
    own_chain: dict[str, Any],
    clean_db: str,
) -> None:
    # Registered while the name was acceptable (here: by a hub allowing private addresses);
    # what the name resolves to when the hub connects is what counts.
    url = f"http://localhost:{own_chain['port']}"
    created = client.post(
        "/v1/chains", json=registration(own_chain, chain_id=CHAIN_ID, rpc_urls=[url]), headers=admin
    )
    assert created.status_code == 201, created.text
    assert client.get("/v1/chains/own").json()["live"]["reachable"] is True

    live = strict.get("/v1/chains/own").json()["live"]
    assert live["reachable"] is False
    assert "refused by the network policy" in live["error"] and POLICY in live["error"]
    assert "host localhost resolves to" in live["error"]
    ready = strict.get("/readyz")
    assert ready.status_code == 503 and POLICY in ready.json()["chains"]["own"]["error"]

    # The relay's adapters hold to the policy too; a validator's own endpoints are its
    # operator's choice.
    engine = make_engine(clean_db)
    ctx = RelayContext(Settings(rpc_allow_private=False), make_sessionmaker(engine))
    try:
        with transaction(ctx.sessions) as session:
            chain = session.scalar(select(Chain).where(Chain.name == "own"))
            assert chain is not None
            with pytest.raises(EndpointUnavailableError, match="refused by the network policy"):
                ctx.adapter(chain).head()
            assert ctx.own_adapter(chain.family, (url,), 1).head().number >= 0
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::127.0.0.1]",  # IPv4-compatible
        "[64:ff9b::7f00:1]",  # NAT64
        "[64:ff9b:1::7f00:1]",  # local-use NAT64
        "[2002:7f00:1::]",  # 6to4
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    ],
)
def test_loopback_in_any_form_is_refused(
    strict: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str, host: str
) -> None:
    url = f"http://{host}:{own_chain['port']}"
    answer = strict.post(
        "/v1/chains", json=registration(own_chain, chain_id=CHAIN_ID, rpc_urls=[url]), headers=admin
    )
    assert_error(answer, 422, "loopback or private", POLICY)
    assert strict.get("/v1/chains").json() == []
