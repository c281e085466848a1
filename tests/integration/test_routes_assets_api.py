"""Routes and assets over REST, on the three-chain devnet."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from web3 import Web3
from web3.contract import Contract

from adapters.evm.contracts import load_artifact
from tests.integration.test_registry_api import assert_error

pytestmark = pytest.mark.integration


def erc20(rpc_url: str, address: str) -> Contract:
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    return w3.eth.contract(address=address, abi=list(load_artifact("TestToken").abi))


def register_chains(client: httpx.Client, admin: dict[str, str], devnet: dict[str, Any]) -> None:
    for chain in devnet["chains"]:
        body = {
            "name": chain["name"],
            "chain_id": chain["chain_id"],
            "family": "evm",
            "rpc_urls": [chain["rpc_url"]],
            "finality": chain["finality"],
            "gateway_address": chain["gateway"],
            "bridge_address": chain["bridge"],
        }
        client.post("/v1/chains", json=body, headers=admin).raise_for_status()


def test_routes(
    client: httpx.Client, admin: dict[str, str], devnet_doc: dict[str, Any], clean_db: str
) -> None:
    register_chains(client, admin, devnet_doc)
    created = client.post("/v1/routes", json={"src": "alpha", "dst": "beta"}, headers=admin)
    assert created.status_code == 201, created.text
    route = created.json()
    assert (route["src"], route["dst"], route["status"]) == ("alpha", "beta", "active")

    assert_error(
        client.post("/v1/routes", json={"src": "alpha", "dst": "beta"}, headers=admin),
        409,
        "already exists",
    )
    assert_error(
        client.post("/v1/routes", json={"src": "alpha", "dst": "alpha"}, headers=admin),
        422,
        "two different chains",
    )
    assert_error(
        client.post("/v1/routes", json={"src": "alpha", "dst": "nowhere"}, headers=admin),
        422,
        "nowhere",
    )
    assert_error(client.post("/v1/routes", json={"src": "alpha", "dst": "gamma"}), 401)

    paused = client.patch(
        f"/v1/routes/{route['id']}", json={"paused": True, "reason": "audit"}, headers=admin
    )
    assert paused.json()["status"] == "paused" and paused.json()["status_by"] == "admin-token"
    assert_error(client.patch("/v1/routes/999", json={"paused": True}, headers=admin), 404)
    # Found by schemathesis: an id past Postgres's integer range was a 500.
    huge = client.patch("/v1/routes/14676445546", json={"paused": True}, headers=admin)
    assert_error(huge, 422)
    assert_error(client.get("/v1/messages/not-an-id"), 422)
    assert_error(client.get("/v1/messages", params={"cursor": "garbage"}), 422)
    assert_error(client.get("/v1/messages", params={"state": "lost"}), 422, "state must be")
    assert [r["status"] for r in client.get("/v1/routes").json()] == ["paused"]

    client.delete("/v1/chains/beta", headers=admin).raise_for_status()
    assert client.get(f"/v1/routes/{route['id']}").json()["status_reason"] == "chain beta retired"


def test_assets(
    client: httpx.Client, admin: dict[str, str], devnet_doc: dict[str, Any], clean_db: str
) -> None:
    register_chains(client, admin, devnet_doc)
    asset = devnet_doc["asset"]
    body = {
        "symbol": asset["symbol"],
        "home_chain": asset["home_chain"],
        "home_token": asset["home_token"],
        "deployments": asset["deployments"],
    }
    created = client.post("/v1/assets", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["deployments"] == asset["deployments"]

    supply = client.get(f"/v1/assets/{asset['symbol']}").json()["supply"]
    chains = {c["name"]: c for c in devnet_doc["chains"]}
    home = chains[asset["home_chain"]]
    locked = erc20(home["rpc_url"], asset["home_token"]).functions.balanceOf(home["bridge"]).call()
    assert supply["locked_at_home"] == str(locked)
    assert supply["wrapped"] == {
        name: str(erc20(chains[name]["rpc_url"], token).functions.totalSupply().call())
        for name, token in asset["deployments"].items()
    }
    wrapped_total = sum(int(v) for v in supply["wrapped"].values())
    assert supply["balanced"] is (locked == wrapped_total + int(supply["in_flight"]))

    assert_error(client.post("/v1/assets", json=body, headers=admin), 409)
    eoa = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    no_code = {**body, "symbol": "X2", "home_token": eoa}
    assert_error(client.post("/v1/assets", json=no_code, headers=admin), 422, "no contract")
    home_twice = {**body, "symbol": "X3", "deployments": {asset["home_chain"]: eoa}}
    assert_error(client.post("/v1/assets", json=home_twice, headers=admin), 422, "home chain")
    assert_error(client.get("/v1/assets/NOPE"), 404)
    assert [a["symbol"] for a in client.get("/v1/assets").json()] == [asset["symbol"]]
