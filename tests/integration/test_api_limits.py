"""Oversized input against the real API process: a body over HUB_MAX_BODY_BYTES is a 413
whether its size is declared (Content-Length) or streamed (chunked), an oversized field in a
small body is a 422, both in the one error shape, and neither writes anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import start_api
from tests.integration.api_guard import Fingerprint

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024  # HUB_MAX_BODY_BYTES' default


def body_of(size: int) -> bytes:
    """A JSON route registration padded to exactly `size` bytes (the pad is not a field the
    API knows, so a body that gets past the limit is a 422)."""
    empty = json.dumps({"src": "alpha", "dst": "beta", "pad": ""}).encode()
    return json.dumps({"src": "alpha", "dst": "beta", "pad": "x" * (size - len(empty))}).encode()


def chunks(body: bytes, size: int = 8192) -> Iterator[bytes]:
    """The body as a stream: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code and error["message"]
    return dict(error)


@pytest.fixture
def fingerprint(clean_db: str) -> Iterator[Fingerprint]:
    fp = Fingerprint(clean_db)
    yield fp
    fp.close()


def post(api_url: str, content: Any, headers: dict[str, str]) -> httpx.Response:
    # A fresh connection each time: the hub closes one whose body it did not read.
    headers = {"Content-Type": "application/json", **headers}
    return httpx.post(f"{api_url}/v1/routes", content=content, headers=headers, timeout=30)


def test_declared_body_over_the_limit_is_413(
    api_url: str, admin: dict[str, str], fingerprint: Fingerprint
) -> None:
    before = fingerprint.take()
    for headers in (admin, {}):  # refused before the key is even looked at
        response = post(api_url, body_of(LIMIT + 1), headers)
        error = assert_refused(response, 413, "too_large")
        assert error["details"] == {"limit": LIMIT} and str(LIMIT) in error["message"]
        assert response.headers["connection"] == "close"
    assert fingerprint.take() == before


def test_streamed_body_over_the_limit_is_413(
    api_url: str, admin: dict[str, str], fingerprint: Fingerprint
) -> None:
    before = fingerprint.take()
    response = post(api_url, chunks(body_of(LIMIT + 1)), admin)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_refused(response, 413, "too_large")
    assert fingerprint.take() == before


def test_a_body_of_the_limit_reaches_validation(
    api_url: str, admin: dict[str, str], fingerprint: Fingerprint
) -> None:
    before = fingerprint.take()
    for content in (body_of(LIMIT), chunks(body_of(LIMIT))):
        error = assert_refused(post(api_url, content, admin), 422, "invalid_input")
        assert "pad" in error["message"]
    assert fingerprint.take() == before


def test_a_huge_body_is_refused_and_the_api_goes_on(
    api_url: str, admin: dict[str, str], fingerprint: Fingerprint
) -> None:
    before = fingerprint.take()
    huge = body_of(16 * 1024 * 1024)
    assert_refused(post(api_url, chunks(huge, 1 << 20), admin), 413, "too_large")
    assert httpx.get(f"{api_url}/healthz", timeout=5).status_code == 200
    assert fingerprint.take() == before


OVERSIZED_FIELDS = [
    ("POST", "/v1/chains", {"name": "a" * 65}, "name"),
    (
        "POST",
        "/v1/chains",
        {"rpc_urls": [f"http://127.0.0.1:{8000 + i}" for i in range(9)]},
        "rpc_urls",
    ),
    ("POST", "/v1/chains", {"rpc_urls": ["http://127.0.0.1/" + "a" * 2048]}, "rpc_urls.0"),
    ("POST", "/v1/chains", {"gateway_address": "0x" + "a" * 200}, "gateway_address"),
    ("PATCH", "/v1/chains/alpha", {"paused": True, "reason": "r" * 501}, "reason"),
    ("POST", "/v1/routes", {"src": "alpha", "dst": "b" * 65}, "dst"),
    ("PATCH", "/v1/routes/1", {"paused": True, "reason": "r" * 501}, "reason"),
    ("POST", "/v1/assets", {"symbol": "S" * 33}, "symbol"),
    ("POST", "/v1/assets", {"deployments": {f"c{i}": "0x00" for i in range(65)}}, "deployments"),
    ("PATCH", "/v1/assets/ITT", {"paused": True, "reason": "r" * 501}, "reason"),
    (
        "POST",
        "/v1/messages/" + "ab" * 32 + "/attestations",
        {"signature": "0x" + "ab" * 66},
        "signature",
    ),
]


@pytest.mark.parametrize(("method", "path", "fields", "where"), OVERSIZED_FIELDS)
def test_an_oversized_field_in_a_small_body_is_422(
    api_url: str,
    admin: dict[str, str],
    fingerprint: Fingerprint,
    method: str,
    path: str,
    fields: dict[str, Any],
    where: str,
) -> None:
    bases: dict[str, dict[str, Any]] = {
        "/v1/chains": {
            "name": "own",
            "chain_id": 7,
            "rpc_urls": ["http://127.0.0.1:1"],
            "finality": 2,
            "gateway_address": "0x" + "11" * 20,
            "bridge_address": "0x" + "22" * 20,
        },
        "/v1/assets": {"symbol": "S", "home_chain": "alpha", "home_token": "0x" + "33" * 20},
    }
    base = bases.get(path, {})
    body = json.dumps({**base, **fields}).encode()
    assert len(body) < LIMIT
    before = fingerprint.take()
    headers = {"Content-Type": "application/json", **admin}
    response = httpx.request(method, api_url + path, content=body, headers=headers, timeout=30)
    error = assert_refused(response, 422, "invalid_input")
    assert error["message"].startswith(f"{where}:"), error["message"]
    assert fingerprint.take() == before


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/v1/messages", {"sender": "0x" + "a" * 200}, "sender"),
        ("/v1/messages", {"cursor": "c" * 1000}, "cursor"),
        ("/v1/messages", {"src": "s" * 100}, "src"),
    ],
)
def test_an_oversized_query_value_is_422(
    client: httpx.Client, clean_db: str, path: str, params: dict[str, str], where: str
) -> None:
    error = assert_refused(client.get(path, params=params), 422, "invalid_input")
    assert error["message"].startswith(f"query.{where}:"), error["message"]


def test_an_oversized_reason_to_retire_is_422(
    client: httpx.Client, admin: dict[str, str], fingerprint: Fingerprint
) -> None:
    before = fingerprint.take()
    response = client.delete("/v1/chains/alpha", params={"reason": "r" * 501}, headers=admin)
    error = assert_refused(response, 422, "invalid_input")
    assert error["message"].startswith("query.reason:"), error["message"]
    assert fingerprint.take() == before


def test_the_limit_is_a_setting(migrated_pg: str, tmp_path: Path) -> None:
    proc, url = start_api(migrated_pg, tmp_path / "api.log", HUB_MAX_BODY_BYTES="2048")
    try:
        assert_refused(post(url, body_of(2049), {}), 413, "too_large")
        assert_refused(post(url, chunks(body_of(2049), 512), {}), 413, "too_large")
        assert_refused(post(url, body_of(2048), {}), 401, "unauthorized")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
