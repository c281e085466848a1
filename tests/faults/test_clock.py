"""The machine's clock jumps under the hub, and a second relayer with the same key is
started by mistake.

The hub's processes run under libfaketime with an offset the test changes (Postgres, Redis
and the chains keep the real time, as services on other machines do). A jump forward is made
under the running processes. A jump back is made across a crash of every process (SIGKILL,
then all started again an hour behind): libfaketime also moves the monotonic clock, which a
real machine never does, so a live jump back would stall every sleep in them, an artifact of
the tool rather than a fault of the hub."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from tests.faults.harness import LIBFAKETIME, Chain, FaultStack
from tests.faults.test_processes import with_stream
from tests.integration.relay.chain import rpc, w3

pytestmark = pytest.mark.integration
Chains = dict[str, Chain]
HUB = ("api", "validator-1", "validator-2", "validator-3", "relay", "beat")


def restart_everything(stack: FaultStack, clock: Path | None) -> None:
    """SIGKILL every process of the hub, then start them all (under `clock`, if given)."""
    for name in [n for n in stack.procs if n != "api"] + ["api"]:
        stack.kill(name, signal.SIGKILL)
    stack.clock_file = clock
    stack.start_all()


@pytest.fixture
def shifted_clock(fault_stack: FaultStack) -> Iterator[Path]:
    """The hub's processes under a clock the test moves by writing an offset to a file."""
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: run scripts/services.sh (installs faketime)")
    clock = fault_stack.log_dir / "clock-offset"
    clock.write_text("+0\n")
    restart_everything(fault_stack, clock)
    try:
        yield clock
    finally:
        restart_everything(fault_stack, None)


def test_clock_jumps(fault_stack: FaultStack, fault_chains: Chains, shifted_clock: Path) -> None:
    s = fault_stack

    def inject() -> None:
        shifted_clock.write_text("+1h\n")  # forward, under the running processes
        time.sleep(6)
        shifted_clock.write_text("-1h\n")  # two hours back, across a crash of everything
        restart_everything(s, shifted_clock)

    with_stream(s, fault_chains, "clock-jumps", inject, after=6)


def test_two_relayers_with_one_key(fault_stack: FaultStack, fault_chains: Chains) -> None:
    """A second relay worker with the same key joins the hub by mistake, and a relayer
    outside the hub spends the key's nonces on beta: every transfer is delivered once."""
    s, beta = fault_stack, fault_chains["beta"]
    stolen: list[str] = []

    def inject() -> None:
        s.start_relay_worker("relay-2")
        for _ in range(6):  # someone else's transactions with the same key take its nonces
            stolen.append(spend_a_nonce(beta, s.key("relayer")))
            time.sleep(1)

    try:
        with_stream(s, fault_chains, "two-relayers-one-key", inject, after=6)
    finally:
        s.kill("relay-2", signal.SIGTERM)
    assert all(rpc(beta, "eth_getTransactionReceipt", h) for h in stolen)


def spend_a_nonce(chain: Chain, key: str) -> str:
    """A transaction from `key` at its next mined nonce, with a fee above the hub's cap: it
    replaces whatever the hub has pending at that nonce."""
    web3 = w3(chain["rpc_url"])
    account = Account.from_key(key)
    tx = {
        "to": account.address,
        "value": 0,
        "gas": 21_000,
        "nonce": web3.eth.get_transaction_count(account.address, "latest"),
        "chainId": chain["chain_id"],
        "maxFeePerGas": 20 * 10**9,
        "maxPriorityFeePerGas": 10 * 10**9,
    }
    signed = account.sign_transaction(tx)
    return "0x" + web3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")
