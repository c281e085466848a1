"""The hub's first RPC endpoint of every chain goes bad (times out, answers 503, drops the
connection, or lags many blocks behind) while transfers stream: the adapters fail over to
the second URL and the stream goes on."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.harness import FIGURES, Chain, FaultStack
from tests.faults.test_processes import stream_with_faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
Chains = dict[str, Chain]
LAG_BLOCKS = 40
FAULT_SECONDS = 10 if FIGURES else 5


def back_to_first_endpoint(stack: FaultStack, chains: list[str]) -> None:
    """A failover sticks to the endpoint that answered: drop the second endpoints for a
    moment, so every process of the hub is on the first one (the one about to go bad)."""
    seconds = [stack.proxies[f"{name}/2"] for name in chains]
    for proxy in seconds:
        proxy.fault = "drop"
    try:
        time.sleep(2)
    finally:
        for proxy in seconds:
            proxy.fault = None


def test_rpc_endpoints_fail_over(fault_stack: FaultStack, fault_chains: Chains) -> None:
    proxies = [fault_stack.proxies[name] for name in fault_chains]

    def bad_endpoint(mode: str) -> Callable[[], None]:
        def inject() -> None:
            calls = sum(p.calls for p in proxies)
            for proxy in proxies:
                proxy.fault, proxy.lag = (None, LAG_BLOCKS) if mode == "lag" else (mode, 0)
            try:
                time.sleep(FAULT_SECONDS)  # the stream goes on meanwhile
            finally:
                for proxy in proxies:
                    proxy.fault, proxy.lag = None, 0
            assert sum(p.calls for p in proxies) > calls  # the hub did call the bad endpoint

        return inject

    figures = stream_with_faults(
        fault_stack,
        fault_chains,
        [(f"rpc-{mode}", bad_endpoint(mode)) for mode in ("timeout", "5xx", "drop", "lag")],
        before=1.0,
        prepare=lambda _: back_to_first_endpoint(fault_stack, list(fault_chains)),
    )
    for f in figures:
        # Failing over costs a timeout or two per process, never the length of the fault.
        assert f.worst_latency_s < FAULT_SECONDS + 30, f
