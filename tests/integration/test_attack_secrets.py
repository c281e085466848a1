"""Attack 6 of issue 6: `${NAME}` in an RPC URL was filled from any environment variable of the
hub's processes and sent to that URL's host, and errors showed the filled-in URL, some to
anonymous callers. Now only `${HUB_RPC_SECRET_...}` is filled in, and no response shows a
secret, whichever part of the URL carries it. Against the API as its own process, whose
environment holds the secret, a chain run by hand and a provider that wants its key in the
path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RPC_SECRET
from tests.integration.helpers import deploy, plain_anvil
from tests.integration.provider import keyed_provider
from tests.integration.test_registry_api import assert_error, registration

pytestmark = pytest.mark.integration

CHAIN_ID = 4343
REF = "${HUB_RPC_SECRET_TEST}"  # the API process has HUB_RPC_SECRET_TEST=RPC_SECRET


@pytest.fixture(scope="module")
def own_chain() -> Iterator[dict[str, Any]]:
    with plain_anvil(CHAIN_ID) as url:
        yield {"rpc_url": url, **deploy(url)}


def secret_url(base: str) -> str:
    """The secret as user name, path key and query value at once: `user@host/v3/KEY?k=KEY`."""
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{REF}@{rest}/v3/{REF}?key={REF}"


def test_a_secret_in_the_url_shows_in_no_response(
    client: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str
) -> None:
    with keyed_provider(own_chain["rpc_url"], RPC_SECRET) as provider:
        url = secret_url(provider)
        body = registration(own_chain, chain_id=CHAIN_ID, rpc_urls=[url])
        created = client.post("/v1/chains", json=body, headers=admin)
        assert created.status_code == 201, created.text  # the key reached the provider
        shown = created.json()["rpc_urls"][0]
        asset = {"symbol": "OWN", "home_chain": "own", "home_token": own_chain["test_token"]}
        assert client.post("/v1/assets", json=asset, headers=admin).status_code == 201
        assert client.get("/v1/chains/own").json()["live"]["reachable"] is True

    # The provider is gone: every read of the chain fails, and says so without the key.
    live = client.get("/v1/chains/own").json()["live"]
    supply = client.get("/v1/assets/OWN").json()["supply"]
    ready = client.get("/readyz").json()
    dead = client.post("/v1/chains", json={**body, "name": "own2", "chain_id": 1}, headers=admin)
    patched = client.patch("/v1/chains/own", json={"rpc_urls": [url]}, headers=admin)
    answers = {
        "GET /v1/chains/own": live["error"],
        "GET /v1/assets/OWN": supply["errors"].get("own"),
        "GET /readyz": ready["chains"]["own"]["error"],
        "POST /v1/chains": dead.json()["error"]["message"],
        "PATCH /v1/chains/own": patched.json()["error"]["message"],
    }
    for where, error in answers.items():
        assert error, f"{where} reported no error"
        assert RPC_SECRET not in error, f"{where} shows the secret: {error}"
        assert shown in error or "***" in error, f"{where}: {error}"
    assert live["reachable"] is False and supply["balanced"] is None
    assert shown == f"http://***@{provider.removeprefix('http://')}/v3/***?key=***"
    assert dead.status_code == 422 and patched.status_code == 422


@pytest.mark.parametrize("name", ["HUB_ADMIN_TOKEN", "HUB_DATABASE_URL", "PATH", "RPC_KEY"])
def test_only_hub_rpc_secret_names_are_filled_in(
    client: httpx.Client,
    admin: dict[str, str],
    own_chain: dict[str, Any],
    clean_db: str,
    name: str,
) -> None:
    url = own_chain["rpc_url"] + "/?key=${" + name + "}"
    body = registration(own_chain, chain_id=CHAIN_ID, rpc_urls=[url])
    rule = "only to environment variables named HUB_RPC_SECRET_"
    assert_error(client.post("/v1/chains", json=body, headers=admin), 422, name, rule)
    assert client.get("/v1/chains").json() == []

    client.post("/v1/chains", json=registration(own_chain, chain_id=CHAIN_ID), headers=admin)
    patch = client.patch("/v1/chains/own", json={"rpc_urls": [url]}, headers=admin)
    assert_error(patch, 422, name, rule)
    assert client.get("/v1/chains/own").json()["rpc_urls"] == [own_chain["rpc_url"]]
