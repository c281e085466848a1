"""The machine's clock jumps under the hub.

The hub's processes run under libfaketime with an offset the test changes (Postgres, Redis
and the chains keep the real time, as services on other machines do). A jump forward is made
under the running processes. A jump back is made across a crash of every process (SIGKILL,
then all started again an hour behind): libfaketime also moves the monotonic clock, which a
real machine never does, so a live jump back would stall every sleep in them, an artifact of
the tool rather than a fault of the hub."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.harness import LIBFAKETIME, Chain, FaultStack
from tests.faults.test_processes import with_stream

pytestmark = pytest.mark.integration
Chains = dict[str, Chain]


def restart_everything(stack: FaultStack) -> None:
    """SIGKILL every process of the hub, then start them all again."""
    for name in [n for n in stack.procs if n != "api"] + ["api"]:
        stack.kill(name, signal.SIGKILL)
    stack.start_all()


def test_clock_jumps(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """+1 h under the running processes, then two hours back across a crash of all of them.
    The hub's processes stay an hour behind for the tests that follow."""
    s, clock = fault_stack, fault_stack.clock_file
    if clock is None:
        pytest.fail(f"{LIBFAKETIME} is missing: run scripts/services.sh (installs faketime)")

    def inject() -> None:
        clock.write_text("+1h\n")  # forward, under the running processes
        time.sleep(6)
        clock.write_text("-1h\n")  # two hours back, across a crash of everything
        restart_everything(s)

    with_stream(s, fault_chains, "clock-jumps", inject)
