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
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.services.relay import leases
from tests.faults.harness import LIBFAKETIME, Chain, FaultStack
from tests.faults.test_processes import with_stream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
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


def test_a_lease_keeps_the_database_clock(
    migrated_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam itself: a process whose clock is an hour ahead cannot take a lease another
    holds, and one whose clock is an hour behind leaves none that outlives it by the hour."""
    sessions = make_sessionmaker(make_engine(migrated_pg))
    held, short = f"deliver:test:{uuid.uuid4().hex}", f"scan:test:{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        assert leases.acquire(session, held, "a", 30)
    monkeypatch.setattr(leases, "utcnow", lambda: now + timedelta(hours=1))
    with transaction(sessions) as session:
        assert not leases.acquire(session, held, "b", 30)
    monkeypatch.setattr(leases, "utcnow", lambda: now - timedelta(hours=1))
    with transaction(sessions) as session:
        assert leases.acquire(session, short, "c", 0.5)  # then "c" dies without releasing
    monkeypatch.undo()
    time.sleep(1)
    with transaction(sessions) as session:
        assert leases.acquire(session, short, "d", 30)
