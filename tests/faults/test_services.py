"""The hub's services fail under load: Redis (the broker) restarted empty, Postgres crashed
and started again. Work in flight is rebuilt from Postgres; nothing is half-written."""

from __future__ import annotations

import random
import time

import pytest

from tests.faults.harness import Chain, FaultStack
from tests.faults.test_processes import stream_with_faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
Chains = dict[str, Chain]


def test_redis_and_postgres_restarted(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """Redis killed and started empty: every queued task and pending mark is gone, and
    beat's next ticks fan the work out again from what Postgres holds. Then Postgres stopped
    at once (every connection cut mid-transaction, recovery from the WAL at the next start):
    workers reconnect, and what a cut transaction wrote is not there at all."""
    pg, broker = fault_stack.pg, fault_stack.broker
    assert pg is not None and broker is not None

    def restart_redis() -> None:
        broker.kill()
        time.sleep(random.uniform(2, 4))
        broker.start()

    def restart_postgres() -> None:
        pg.crash()
        time.sleep(random.uniform(2, 4))
        pg.start()

    faults = [("restart-redis", restart_redis), ("restart-postgres", restart_postgres)]
    stream_with_faults(fault_stack, fault_chains, faults)
