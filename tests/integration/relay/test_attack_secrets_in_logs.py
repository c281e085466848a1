"""Attack 6 of issue 6, in the relay's logs: an adapter's error named the URL it connected
to, with the provider's key filled in, and the relay workers logged it. Now the workers log
only the redacted form. Real processes: the relay stack, whose API and workers have the key
in their environment, and a provider that wants it in the path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, RPC_SECRET
from tests.integration.helpers import deploy, plain_anvil
from tests.integration.provider import keyed_provider
from tests.integration.relay.stack import Stack, wait_for

pytestmark = pytest.mark.integration
CHAIN_ID = 4545
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def logs(stack: Stack) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in stack.log_dir.glob("*.log")}


def test_relay_workers_never_log_an_rpc_key(stack: Stack) -> None:
    with plain_anvil(CHAIN_ID) as node:
        contracts = deploy(node)
        with keyed_provider(node, RPC_SECRET) as provider:
            ref = "${HUB_RPC_SECRET_TEST}"
            body: dict[str, Any] = {
                "name": "keyed",
                "chain_id": CHAIN_ID,
                "family": "evm",
                "rpc_urls": [f"{provider}/v3/{ref}?key={ref}"],
                "finality": 2,
                "gateway_address": contracts["gateway"],
                "bridge_address": contracts["bridge"],
            }
            created = httpx.post(f"{stack.api}/v1/chains", json=body, headers=ADMIN, timeout=30)
            assert created.status_code == 201, created.text
            wait_for(
                "a relay worker to read the chain",
                lambda: stack.get("/v1/chains/keyed")["relay"]["validator_epoch"] is not None,
            )
        # The provider is gone: every step on this chain fails, and the workers log why.
        try:
            wait_for(
                "a relay worker to log the failure",
                lambda: f"{provider}/v3/" in logs(stack).get("relay.log", ""),
                timeout=30,
            )
        finally:
            httpx.delete(f"{stack.api}/v1/chains/keyed", headers=ADMIN, timeout=30)
    for name, text in logs(stack).items():
        assert RPC_SECRET not in text, f"{name} shows the RPC key"
    assert f"{provider}/v3/***?key=***" in logs(stack)["relay.log"]
