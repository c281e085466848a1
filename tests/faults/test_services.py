"""The hub's services fail under load: Redis (the broker) restarted empty, Postgres crashed
and started again. Work in flight is rebuilt from Postgres; nothing is half-written."""

from __future__ import annotations

import random
import time

import pytest

from tests.faults.harness import Chain, FaultStack
from tests.faults.test_processes import with_stream

pytestmark = pytest.mark.integration
Chains = dict[str, Chain]


def test_redis_restarted_empty(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """Every queued task and every pending mark is lost with the broker; beat's next ticks
    fan the work out again from what Postgres holds."""
    broker = fault_stack.broker
    assert broker is not None

    def inject() -> None:
        broker.kill()
        time.sleep(random.uniform(2, 4))
        broker.start()

    with_stream(fault_stack, fault_chains, "restart-redis", inject, after=6)


def test_postgres_crashed_under_load(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """An immediate stop (every connection cut mid-transaction, recovery from the WAL at the
    next start): workers reconnect, and what a cut transaction wrote is not there at all."""
    pg = fault_stack.pg
    assert pg is not None

    def inject() -> None:
        pg.crash()
        time.sleep(random.uniform(2, 4))
        pg.start()

    with_stream(fault_stack, fault_chains, "restart-postgres", inject, after=6)
