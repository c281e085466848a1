"""The authorization matrix, against the real API process: every write endpoint of the app
(read from its routes, so a new one cannot be left out) called with no key, malformed
Authorization headers, an unknown key, a revoked key, an operator key and an admin key.
Only the role the endpoint needs gets past (a refusal is a 401 or 403 in the one error
shape), and a refused call writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from hub.api.app import create_app
from hub.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_guard import Fingerprint, Target, guarded_api

pytestmark = pytest.mark.integration

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
OPEN = "anyone"  # attestations authenticate themselves: the signature must recover to a validator

# The role each write needs. A write endpoint missing here fails the first test.
NEEDS = {
    ("POST", "/v1/chains"): "admin",
    ("PATCH", "/v1/chains/{name}"): "admin",
    ("DELETE", "/v1/chains/{name}"): "admin",
    ("POST", "/v1/routes"): "admin",
    ("PATCH", "/v1/routes/{route_id}"): "operator",
    ("POST", "/v1/assets"): "admin",
    ("PATCH", "/v1/assets/{symbol}"): "operator",
    ("POST", "/v1/assets/{symbol}/deployments"): "admin",
    ("POST", "/v1/messages/{message_id}/retry"): "operator",
    ("POST", "/v1/transfers/{message_id}/return"): "operator",
    ("POST", "/v1/messages/{message_id}/attestations"): OPEN,
}

# A body each write accepts, so that a caller who gets past the key check is really served.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/chains"): {
        "name": "own",
        "chain_id": 7,
        "rpc_urls": ["http://127.0.0.1:1"],
        "finality": 2,
        "gateway_address": "0x" + "11" * 20,
        "bridge_address": "0x" + "22" * 20,
    },
    ("PATCH", "/v1/chains/{name}"): {"paused": True, "reason": "matrix"},
    ("POST", "/v1/routes"): {"src": "beta", "dst": "alpha"},
    ("PATCH", "/v1/routes/{route_id}"): {"paused": True, "reason": "matrix"},
    ("POST", "/v1/assets"): {
        "symbol": "NEW",
        "home_chain": "alpha",
        "home_token": "0x" + "33" * 20,
    },
    ("PATCH", "/v1/assets/{symbol}"): {"paused": True, "reason": "matrix"},
    ("POST", "/v1/assets/{symbol}/deployments"): {"chain": "beta"},
    ("POST", "/v1/messages/{message_id}/attestations"): {"signature": "0x" + "ab" * 65},
}

# Who calls, as (name, role the caller holds or None, how the header is built from the keys).
CALLERS: list[tuple[str, str | None, Any]] = [
    ("no key", None, lambda k: {}),
    ("basic auth", None, lambda k: {"Authorization": "Basic YWRtaW46YWRtaW4="}),
    ("bearer without a key", None, lambda k: {"Authorization": "Bearer"}),
    ("bearer and a comma", None, lambda k: {"Authorization": "Bearer ,"}),
    ("admin key without scheme", None, lambda k: {"Authorization": k["admin"]}),
    ("admin key as token scheme", None, lambda k: {"Authorization": f"Token {k['admin']}"}),
    ("admin key with a suffix", None, lambda k: {"Authorization": f"Bearer {k['admin']} x"}),
    ("admin key in another header", None, lambda k: {"X-Api-Key": k["admin"]}),
    ("unknown key", None, lambda k: {"Authorization": "Bearer ih_" + "x" * 43}),
    ("revoked admin key", None, lambda k: {"Authorization": f"Bearer {k['revoked']}"}),
    ("operator key", "operator", lambda k: {"Authorization": f"Bearer {k['operator']}"}),
    ("admin key", "admin", lambda k: {"Authorization": f"Bearer {k['admin']}"}),
    ("admin key, lower-case scheme", "admin", lambda k: {"Authorization": f"bearer {k['admin']}"}),
    ("admin token", "admin", lambda k: {"Authorization": f"Bearer {ADMIN_TOKEN}"}),
]
GRANTS = {None: set(), "operator": {"operator", OPEN}, "admin": {"admin", "operator", OPEN}}


def write_routes() -> set[tuple[str, str]]:
    """Every route of the app that writes, those left out of the OpenAPI document too."""
    app = create_app(Settings(database_url="sqlite://"))
    return {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in (route.methods or set()) & WRITES
    }


@pytest.fixture(scope="module")
def target(
    migrated_pg: str, devnet_doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    log = tmp_path_factory.mktemp("auth") / "api.log"
    with guarded_api(migrated_pg, devnet_doc, log) as t:
        yield t


@pytest.fixture(scope="module")
def fingerprint(target: Target) -> Iterator[Fingerprint]:
    fp = Fingerprint(target.db_url)
    yield fp
    fp.close()


def test_every_write_endpoint_is_in_the_matrix() -> None:
    assert write_routes() == set(NEEDS)


def concrete(method: str, path: str, target: Target) -> str:
    values = {
        "name": "gamma" if method == "DELETE" else "beta",  # the retired one stays retired
        "symbol": "ITT",
        "route_id": 1,
        "message_id": target.messages["finalized" if "attestations" in path else "failed"],
    }
    return path.format(**{k: v for k, v in values.items() if "{" + k + "}" in path})


@pytest.mark.parametrize(
    ("method", "path"), sorted(NEEDS), ids=[" ".join(w) for w in sorted(NEEDS)]
)
def test_only_the_right_role_gets_past(
    method: str, path: str, target: Target, fingerprint: Fingerprint
) -> None:
    needs = NEEDS[(method, path)]
    url = target.url + concrete(method, path, target)
    body = BODIES.get((method, path))
    for name, role, header in CALLERS:  # refused callers first: allowed ones may write
        before = fingerprint.take()
        response = httpx.request(method, url, json=body, headers=header(target.keys), timeout=30)
        allowed = needs == OPEN or needs in GRANTS[role]
        why = f"{name} -> {method} {path}: {response.status_code} {response.text}"
        assert response.status_code < 500, why
        if allowed:
            assert response.status_code not in (401, 403), why
            continue
        expected = 403 if role else 401
        assert response.status_code == expected, why
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}, why
        assert error["code"] == ("forbidden" if role else "unauthorized"), why
        if expected == 401:
            assert response.headers["www-authenticate"] == "Bearer", why
        assert fingerprint.take() == before, why
