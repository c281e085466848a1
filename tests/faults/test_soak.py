"""The soak: a stream of transfers for several minutes while faults drawn at random strike one
after another. Runs with `make soak` (pytest -m soak); ISLANDS_SOAK_MINUTES (default 5) and
ISLANDS_SOAK_SEED (default: the time) choose its length and its draw."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import pytest

from tests.faults.harness import (
    Chain,
    FaultStack,
    Run,
    Stream,
    record,
    results_dir,
    spend_a_nonce,
)
from tests.integration.relay.chain import Sender, rpc

MINUTES = float(os.environ.get("ISLANDS_SOAK_MINUTES", "5"))
pytestmark = [
    pytest.mark.integration,
    pytest.mark.soak,
    pytest.mark.timeout(int(MINUTES * 60) + 900),
]
Chains = dict[str, Chain]


def injectors(s: FaultStack, chains: Chains, rng: random.Random) -> dict[str, Callable[[], None]]:
    def kill(name: str, start: Callable[[], None]) -> Callable[[], None]:
        def inject() -> None:
            s.kill(name, signal.SIGKILL)
            time.sleep(rng.uniform(0.5, 4))
            start()

        return inject

    def service(stop: Callable[[], None], start: Callable[[], None]) -> Callable[[], None]:
        def inject() -> None:
            stop()
            time.sleep(rng.uniform(1, 4))
            start()

        return inject

    def rpc_fault(mode: str) -> Callable[[], None]:
        def inject() -> None:
            proxies = [s.proxies[name] for name in chains]
            for proxy in proxies:
                proxy.fault, proxy.lag = (None, 40) if mode == "lag" else (mode, 0)
            time.sleep(rng.uniform(3, 10))
            for proxy in proxies:
                proxy.fault, proxy.lag = None, 0

        return inject

    def out_of_funds() -> None:
        beta = chains["beta"]
        relayer = Sender(beta, s.key("relayer")).address
        funds = rpc(beta, "eth_getBalance", relayer, "latest")
        rpc(beta, "anvil_setBalance", relayer, "0x0")
        time.sleep(rng.uniform(2, 8))
        rpc(beta, "anvil_setBalance", relayer, funds)

    def nonce_thief() -> None:
        for _ in range(rng.randint(1, 4)):
            spend_a_nonce(chains[rng.choice(["alpha", "beta", "gamma"])], s.key("relayer"))
            time.sleep(rng.uniform(0.2, 2))

    pg, broker = s.pg, s.broker
    assert pg is not None and broker is not None
    validator = f"validator-{rng.randint(1, 3)}"
    return {
        "kill-relay-worker": kill("relay", s.start_relay_worker),
        "kill-validator": kill(validator, lambda: s.start_validators(only=validator)),
        "kill-beat": kill("beat", s.start_beat),
        "kill-api": kill("api", s.start_api),
        "restart-redis": service(broker.kill, broker.start),
        "restart-postgres": service(pg.crash, pg.start),
        "rpc-timeout": rpc_fault("timeout"),
        "rpc-5xx": rpc_fault("5xx"),
        "rpc-drop": rpc_fault("drop"),
        "rpc-lag": rpc_fault("lag"),
        "relayer-out-of-funds": out_of_funds,
        "nonce-thief": nonce_thief,
    }


def test_soak(fault_stack: FaultStack, fault_chains: Chains) -> None:
    minutes = MINUTES
    seed = int(os.environ.get("ISLANDS_SOAK_SEED", str(time.time_ns() % 10**6)))
    rng = random.Random(seed)
    faults = injectors(fault_stack, fault_chains, rng)
    run = Run(fault_stack, fault_chains, "soak")
    struck: list[str] = []
    deadline = time.monotonic() + minutes * 60
    with Stream(fault_stack, fault_chains, rate=2.0) as stream, run.fault():
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(5, 20))
            name = rng.choice(sorted(faults))
            print(f"soak: {name} at {time.strftime('%X')}", flush=True)
            faults[name]()
            struck.append(name)
    figures = run.settle(stream, timeout=300)[0]
    figures.notes.append(f"{minutes:g} min, seed {seed}; faults: {', '.join(struck)}")
    record(results_dir(), figures)
    print(f"\n{figures}")
