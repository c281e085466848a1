"""The chain registry over REST, against the running API, real anvil chains and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import RPC_SECRET
from tests.integration.helpers import deploy, islands, plain_anvil

pytestmark = pytest.mark.integration

CHAIN_ID = 4242


@pytest.fixture(scope="module")
def own_chain() -> Iterator[dict[str, Any]]:
    """A chain a user runs by hand, with the hub's contracts deployed by `islands devnet deploy`."""
    with plain_anvil(CHAIN_ID) as url:
        yield {"rpc_url": url, **deploy(url)}


def registration(chain: dict[str, Any], **override: Any) -> dict[str, Any]:
    body = {
        "name": "own",
        "chain_id": CHAIN_ID,
        "family": "evm",
        "rpc_urls": [chain["rpc_url"]],
        "finality": 2,
        "gateway_address": chain["gateway"],
        "bridge_address": chain["bridge"],
    }
    body.update(override)
    return body


def count(db_url: str, table: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
    engine.dispose()
    return int(n)


def assert_error(response: httpx.Response, status: int, *needles: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    for needle in needles:
        assert needle in error["message"], error["message"]


def test_register_own_chain_with_one_call(
    client: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str
) -> None:
    created = client.post("/v1/chains", json=registration(own_chain), headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["chain_id"] == CHAIN_ID and body["status"] == "active"
    assert body["gateway_address"] == own_chain["gateway"]

    shown = client.get("/v1/chains/own").json()
    assert shown["live"]["reachable"] is True
    assert shown["live"]["head"] >= shown["live"]["finalized"] >= 0
    relay = shown["relay"]  # scanning starts at the head the chain had when it registered
    assert relay["start_block"] == relay["cursor_block"] <= shown["live"]["head"]
    assert [c["name"] for c in client.get("/v1/chains").json()] == ["own"]
    assert count(clean_db, "audit_log") == 1


def test_rpc_key_stays_out_of_responses_and_database(
    client: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str
) -> None:
    url = own_chain["rpc_url"] + "/?apikey=${HUB_RPC_SECRET_TEST}"
    created = client.post("/v1/chains", json=registration(own_chain, rpc_urls=[url]), headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["rpc_urls"] == [own_chain["rpc_url"] + "/?apikey=***"]
    shown = client.get("/v1/chains/own")
    assert shown.json()["live"]["reachable"] is True
    engine = create_engine(clean_db)
    with engine.connect() as conn:
        stored = " ".join(str(r) for r in conn.execute(text("SELECT * FROM chains")).all())
        audit = " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")).all())
    engine.dispose()
    assert "${HUB_RPC_SECRET_TEST}" in stored
    for place in (created.text, shown.text, stored, audit):
        assert RPC_SECRET not in place

    unset = registration(
        own_chain,
        name="own2",
        chain_id=1,
        rpc_urls=[own_chain["rpc_url"] + "/${HUB_RPC_SECRET_NOPE}"],
    )
    assert_error(client.post("/v1/chains", json=unset, headers=admin), 422, "NOPE")


def test_rejections_write_nothing(
    client: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str
) -> None:
    body = registration(own_chain)
    assert_error(client.post("/v1/chains", json=body), 401, "API key")
    bad_key = {"Authorization": "Bearer nope"}
    assert_error(client.post("/v1/chains", json=body, headers=bad_key), 401, "unknown")

    wrong_id = registration(own_chain, chain_id=4243)
    assert_error(client.post("/v1/chains", json=wrong_id, headers=admin), 422, "4242", "4243")

    eoa = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    no_code = registration(own_chain, gateway_address=eoa)
    assert_error(client.post("/v1/chains", json=no_code, headers=admin), 422, "no contract")

    dead = registration(own_chain, rpc_urls=[own_chain["rpc_url"], "http://127.0.0.1:1"])
    assert_error(client.post("/v1/chains", json=dead, headers=admin), 422, "did not answer")

    scheme = registration(own_chain, rpc_urls=["ftp://127.0.0.1:8545"])
    assert_error(client.post("/v1/chains", json=scheme, headers=admin), 422, "scheme")

    for field, value in [
        ("finality", "soon"),
        ("finality", -1),
        ("chain_id", "x"),
        ("name", "Has Spaces"),
        ("rpc_urls", []),
        ("family", "cosmos"),
        ("gateway_address", "0x123"),
    ]:
        response = client.post(
            "/v1/chains", json=registration(own_chain, **{field: value}), headers=admin
        )
        assert_error(response, 422)
    assert_error(client.post("/v1/chains", content=b"{not json", headers=admin), 422)

    assert client.get("/v1/chains").json() == []
    assert count(clean_db, "chains") == 0
    assert count(clean_db, "audit_log") == 0


def test_taken_name_and_chain_id_conflict(
    client: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str
) -> None:
    assert client.post("/v1/chains", json=registration(own_chain), headers=admin).status_code == 201
    again = client.post("/v1/chains", json=registration(own_chain), headers=admin)
    assert_error(again, 409, "own")
    same_id = client.post("/v1/chains", json=registration(own_chain, name="other"), headers=admin)
    assert_error(same_id, 409, "4242")
    assert count(clean_db, "chains") == 1


def test_operator_key_is_forbidden_to_register(
    client: httpx.Client, own_chain: dict[str, Any], clean_db: str
) -> None:
    created = islands("keys", "create", "--role", "operator", database_url=clean_db)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    operator = {"Authorization": f"Bearer {key}"}
    response = client.post("/v1/chains", json=registration(own_chain), headers=operator)
    assert_error(response, 403, "admin")
    engine = create_engine(clean_db)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, role FROM api_keys")).all()
    engine.dispose()
    assert [r.role for r in stored] == ["operator"]
    assert key not in stored[0].key_hash  # only the hash is kept

    bad_role = islands("keys", "create", "--role", "superuser", database_url=clean_db)
    assert bad_role.returncode != 0 and "unknown role" in bad_role.stderr
    assert "Traceback" not in bad_role.stderr


def test_pause_resume_change_and_retire(
    client: httpx.Client, admin: dict[str, str], own_chain: dict[str, Any], clean_db: str
) -> None:
    client.post("/v1/chains", json=registration(own_chain), headers=admin).raise_for_status()
    paused = client.patch(
        "/v1/chains/own", json={"paused": True, "reason": "upgrade"}, headers=admin
    )
    assert paused.json()["status"] == "paused" and paused.json()["status_reason"] == "upgrade"
    resumed = client.patch("/v1/chains/own", json={"paused": False}, headers=admin)
    assert resumed.json()["status"] == "active"

    safe = client.patch("/v1/chains/own", json={"finality": "safe"}, headers=admin)
    assert safe.status_code == 200 and safe.json()["finality"] == "safe"
    dead = client.patch("/v1/chains/own", json={"rpc_urls": ["http://127.0.0.1:1"]}, headers=admin)
    assert_error(dead, 422, "did not answer")
    assert client.get("/v1/chains/own").json()["rpc_urls"] == [own_chain["rpc_url"]]
    assert_error(client.patch("/v1/chains/own", json={}, headers=admin), 422, "nothing to change")
    assert_error(client.patch("/v1/chains/nope", json={"paused": True}, headers=admin), 404)

    retired = client.delete("/v1/chains/own", headers=admin)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert client.get("/v1/chains").json() == []
    listed = client.get("/v1/chains", params={"include_retired": True}).json()
    assert [c["status"] for c in listed] == ["retired"]
    assert_error(client.patch("/v1/chains/own", json={"paused": True}, headers=admin), 409)


def test_health_and_openapi(client: httpx.Client, clean_db: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"]["ok"] is True
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/chains", "/v1/routes", "/v1/assets"} <= set(paths)
