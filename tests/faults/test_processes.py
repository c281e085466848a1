"""SIGKILL of each of the hub's processes at a random moment of a steady stream of transfers:
nothing is lost, nothing is delivered twice, the books balance."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable

import pytest

from tests.faults.harness import Chain, FaultStack, Figures, Run, Stream, record, results_dir

pytestmark = pytest.mark.integration
Chains = dict[str, Chain]


def with_stream(
    stack: FaultStack,
    chains: Chains,
    name: str,
    inject: Callable[[], None],
    before: float = 3.0,
    after: float = 4.0,
    rate: float = 2.0,
) -> Figures:
    """A stream; the fault at a random moment after `before` s; `after` s more of stream."""
    run = Run(stack, chains, name)
    with Stream(stack, chains, rate=rate) as stream:
        time.sleep(before + random.uniform(0, 2))
        with run.fault:
            inject()
        time.sleep(after)
    figures = run.settle(stream)
    record(results_dir(), figures)
    print(f"\n{figures}")
    return figures


def kill_and_restart(stack: FaultStack, name: str, start: Callable[[], None]) -> None:
    stack.kill(name, signal.SIGKILL)
    time.sleep(random.uniform(1, 3))
    start()


def test_relay_worker_killed(fault_stack: FaultStack, fault_chains: Chains) -> None:
    s = fault_stack
    f = with_stream(
        s,
        fault_chains,
        "kill-relay-worker",
        lambda: kill_and_restart(s, "relay", s.start_relay_worker),
    )
    assert f.sent > 0


def test_validator_killed(fault_stack: FaultStack, fault_chains: Chains) -> None:
    s = fault_stack
    victim = f"validator-{random.randint(1, 3)}"

    def inject() -> None:
        # One validator of three is down; the other two still meet the threshold of two.
        s.kill(victim, signal.SIGKILL)
        time.sleep(random.uniform(2, 4))
        s.start_validators(only=victim)

    with_stream(s, fault_chains, "kill-validator", inject)


def test_beat_killed(fault_stack: FaultStack, fault_chains: Chains) -> None:
    s = fault_stack
    with_stream(s, fault_chains, "kill-beat", lambda: kill_and_restart(s, "beat", s.start_beat))


def test_api_killed(fault_stack: FaultStack, fault_chains: Chains) -> None:
    s = fault_stack
    with_stream(s, fault_chains, "kill-api", lambda: kill_and_restart(s, "api", s.start_api))
