"""What the fuzzer found, pinned against the real API process: a 405 names every method of
the resource, a body is read as its schema says (0 is not false), a body that is not UTF-8
is a 422 like any other body that is not JSON, and the OpenAPI document declares each
refusal in the one error shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api_guard import Fingerprint

pytestmark = pytest.mark.integration


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code
    return dict(error)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/v1/chains", "GET, POST"),
        ("TRACE", "/v1/chains/alpha", "GET, PATCH, DELETE"),
        ("PUT", "/v1/routes/1", "GET, PATCH"),
        ("DELETE", "/v1/messages/" + "ab" * 32 + "/retry", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_405_names_every_method_of_the_resource(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "http_error")
    assert response.headers["allow"] == allow


@pytest.mark.parametrize("paused", [0, 1, "true", "false", "yes", [], {}])
def test_a_bool_field_takes_only_true_or_false(
    client: httpx.Client, admin: dict[str, str], clean_db: str, paused: Any
) -> None:
    fp = Fingerprint(clean_db)
    before = fp.take()
    for path in ("/v1/routes/1", "/v1/assets/ITT", "/v1/chains/alpha"):
        response = client.patch(path, json={"paused": paused}, headers=admin)
        error = assert_error(response, 422, "invalid_input")
        assert error["message"].startswith("paused:"), error["message"]
    assert fp.take() == before
    fp.close()


def test_a_body_that_is_not_utf8_is_a_422(
    client: httpx.Client, admin: dict[str, str], clean_db: str
) -> None:
    headers = {"Content-Type": "application/json", **admin}
    for body in (b'{"src": "\xff\xfe"}', b"\x80\x81", b"{not json"):
        response = client.post("/v1/routes", content=body, headers=headers)
        assert_error(response, 422, "invalid_input")


def test_a_refused_key_says_which_scheme_to_use(client: httpx.Client, clean_db: str) -> None:
    response = client.post("/v1/routes", json={"src": "a", "dst": "b"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_schema_declares_each_refusal_in_the_one_shape(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            refusals = {s: r for s, r in op["responses"].items() if s.startswith("4")}
            for status, answer in refusals.items():
                shape = answer["content"]["application/json"]["schema"]
                assert shape == error_ref, f"{where} {status}"
            if op.get("security"):  # a write that needs a key
                assert {"401", "403", "409", "422"} <= set(refusals), where
            if "requestBody" in op:
                assert {"413", "422"} <= set(refusals), where
    ready = doc["paths"]["/readyz"]["get"]["responses"]
    assert set(ready) == {"200", "503"}
    chain = doc["components"]["schemas"]["ChainCreate"]["properties"]["finality"]
    assert {"type": "integer", "minimum": 0, "maximum": 10_000} in chain["anyOf"]
