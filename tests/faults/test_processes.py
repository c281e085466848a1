"""SIGKILL of each of the hub's processes at a random moment of a steady stream of transfers:
nothing is lost, nothing is delivered twice, the books balance."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable

import pytest

from tests.faults.harness import (
    FIGURES,
    Chain,
    FaultStack,
    Figures,
    Run,
    Stream,
    record,
    results_dir,
    spend_a_nonce,
)
from tests.integration.relay.chain import rpc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
Chains = dict[str, Chain]


Inject = Callable[[], None]


def stream_with_faults(
    stack: FaultStack,
    chains: Chains,
    faults: list[tuple[str, Inject]],
    before: float = 1.0,
    after: float = 2.0,
    prepare: Callable[[str], None] | None = None,
) -> list[Figures]:
    """One stream; each fault at a random moment `before` s or more after the one before it
    (after the stream caught up with it, in a figures run); `after` s more of stream after
    the last; then every check, and the figures of each fault."""
    run = Run(stack, chains)
    with Stream(stack, chains) as stream:
        for name, inject in faults:
            if prepare is not None:
                prepare(name)
            time.sleep(before + random.uniform(0, 1.5))
            with run.fault(name):
                inject()
            if FIGURES:
                run.caught_up(stream)
        time.sleep(after)
    figures = run.settle(stream)
    for f in figures:
        record(results_dir(), f)
        print(f"\n{f}")
    return figures


def with_stream(
    stack: FaultStack, chains: Chains, name: str, inject: Inject, after: float = 2.0
) -> Figures:
    return stream_with_faults(stack, chains, [(name, inject)], before=2.0, after=after)[0]


def kill_and_restart(stack: FaultStack, name: str, start: Inject) -> None:
    stack.kill(name, signal.SIGKILL)
    time.sleep(random.uniform(1, 3))
    start()


def test_processes_killed(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """The relay worker, one validator of three (the other two meet the threshold), beat and
    the API, one after another in a random order; and a second relayer with the same key."""
    s = fault_stack
    victim = f"validator-{random.randint(1, 3)}"
    faults: list[tuple[str, Inject]] = [
        ("kill-relay-worker", lambda: kill_and_restart(s, "relay", s.start_relay_worker)),
        (
            "kill-validator",
            lambda: kill_and_restart(s, victim, lambda: s.start_validators(only=victim)),
        ),
        ("kill-beat", lambda: kill_and_restart(s, "beat", s.start_beat)),
        ("kill-api", lambda: kill_and_restart(s, "api", s.start_api)),
        ("two-relayers-one-key", lambda: two_relayers(s, fault_chains)),
    ]
    random.shuffle(faults)
    try:
        stream_with_faults(s, fault_chains, faults)
    finally:
        if "relay-2" in s.procs:
            s.kill("relay-2", signal.SIGTERM)


def two_relayers(stack: FaultStack, chains: Chains) -> None:
    """A second relay worker with the same key joins the hub by mistake (it runs to the end
    of the test), and a relayer outside the hub spends the key's nonces on beta."""
    stack.start_relay_worker("relay-2")
    for _ in range(4):
        stolen = spend_a_nonce(chains["beta"], stack.key("relayer"))
        time.sleep(1)
        assert rpc(chains["beta"], "eth_getTransactionReceipt", stolen)
