"""The hub's first RPC endpoint of every chain goes bad (times out, answers 503, drops the
connection, or lags many blocks behind) while transfers stream: the adapters fail over to
the second URL and the stream goes on."""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import Chain, FaultStack
from tests.faults.test_processes import with_stream

pytestmark = pytest.mark.integration
Chains = dict[str, Chain]
LAG_BLOCKS = 40
FAULT_SECONDS = 10


def back_to_first_endpoint(stack: FaultStack, chains: list[str]) -> None:
    """A failover sticks to the endpoint that answered: drop the second endpoints for a
    moment, so every process of the hub is on the first one (the one about to go bad)."""
    seconds = [stack.proxies[f"{name}/2"] for name in chains]
    for proxy in seconds:
        proxy.fault = "drop"
    try:
        time.sleep(3)
    finally:
        for proxy in seconds:
            proxy.fault = None


@pytest.mark.parametrize("mode", ["timeout", "5xx", "drop", "lag"])
def test_rpc_endpoint_fails_over(fault_stack: FaultStack, fault_chains: Chains, mode: str) -> None:
    proxies = [fault_stack.proxies[name] for name in fault_chains]
    back_to_first_endpoint(fault_stack, list(fault_chains))
    calls = sum(p.calls for p in proxies)

    def inject() -> None:
        for proxy in proxies:
            if mode == "lag":
                proxy.lag = LAG_BLOCKS
            else:
                proxy.fault = mode
        try:
            time.sleep(FAULT_SECONDS)  # the stream goes on meanwhile
        finally:
            for proxy in proxies:
                proxy.fault, proxy.lag = None, 0

    figures = with_stream(fault_stack, fault_chains, f"rpc-{mode}", inject, after=3)
    assert sum(p.calls for p in proxies) > calls + 100  # the hub did use the bad endpoint
    # Failing over costs at most a timeout or two per process, never the fault's length.
    assert figures.worst_latency_s < FAULT_SECONDS + 10, figures
