"""The REST API fuzzed from its own OpenAPI (schemathesis) against the real API process on
Postgres, over a registered devnet, with a real admin key: no 500s, every answer as the
schema declares it (status, body, headers), and a refused request writes nothing.

Two passes: every operation with generated input, valid and invalid; then the operations
that name a resource, aimed at resources that exist, with valid input."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from hub.api.app import create_app
from hub.settings import Settings
from tests.integration.api_guard import Fingerprint, Target, changed, guarded_api

Case = schemathesis.Case[Any]

# Left out: "schema-valid data must be accepted". The hub checks input against the chains
# (URLs that answer, contracts that exist) and the registry (two different chains, a known
# chain name) and refuses what they contradict with a documented 422; no schema can say that.
ACCEPTS_VALID_DATA = schemathesis.checks.positive_data_acceptance
# A deeper run explores other inputs: HUB_FUZZ_SEED=7 HUB_FUZZ_EXAMPLES=200 pytest this file.
SEED = int(os.environ.get("HUB_FUZZ_SEED", "20240607"))
EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "15"))
pytestmark = [pytest.mark.integration, pytest.mark.timeout(max(120, 4 * EXAMPLES))]
BOUNDS = settings(
    max_examples=EXAMPLES,  # generated cases per operation, besides schemathesis' coverage ones
    deadline=10_000,  # ms per case: a registration may wait on URLs that do not answer
    database=None,
    suppress_health_check=list(HealthCheck),
)


def published_schema() -> dict[str, Any]:
    """The OpenAPI document the hub's code publishes. Built from the app object because the
    server starts in a fixture, after collection (schemathesis' lazy loader breaks on pytest
    9.2); `test_the_server_publishes_this_schema` proves the server serves the same."""
    return create_app(Settings(database_url="sqlite://")).openapi()


def _config(**generation: Any) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({"seed": SEED, "generation": generation})


anything = schemathesis.openapi.from_dict(published_schema(), config=_config())
existing = schemathesis.openapi.from_dict(
    published_schema(), config=_config(mode="positive")
).include(path_regex=r"\{")


@pytest.fixture(scope="module")
def target(
    migrated_pg: str, devnet_doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    log = tmp_path_factory.mktemp("fuzz") / "api.log"
    with guarded_api(migrated_pg, devnet_doc, log) as t:
        yield t


@pytest.fixture(scope="module")
def fingerprint(target: Target) -> Iterator[Fingerprint]:
    fp = Fingerprint(target.db_url)
    yield fp
    fp.close()


def test_the_server_publishes_this_schema(target: Target) -> None:
    assert httpx.get(f"{target.url}/openapi.json").json() == published_schema()


def check(case: Case, target: Target, fingerprint: Fingerprint) -> None:
    headers = target.auth("admin")
    before = fingerprint.take()
    response = case.call(base_url=target.url, headers=headers, timeout=30)
    if 400 <= response.status_code < 500:
        assert changed(before, fingerprint.take()) == [], (
            f"{case.method} {case.formatted_path} was refused with {response.status_code} "
            f"but wrote: {response.text}"
        )
    case.validate_response(response, headers=headers, excluded_checks=[ACCEPTS_VALID_DATA])


@anything.parametrize()
@BOUNDS
def test_any_input(case: Case, target: Target, fingerprint: Fingerprint) -> None:
    check(case, target, fingerprint)


@existing.parametrize()
@settings(BOUNDS, max_examples=max(EXAMPLES * 2 // 3, 1))
def test_valid_input_on_existing_resources(
    case: Case, target: Target, fingerprint: Fingerprint
) -> None:
    case.path_parameters = {k: target.known[k] for k in case.path_parameters or {}}
    check(case, target, fingerprint)
