"""Attack 2 of issue 6: one validator of three halts a chain with signatures whose v is 0/1.

The open attestation endpoint accepted such a signature and stored it as posted, but the
gateway accepts only v = 27/28, and the hub submits the lowest-address signers: every
delivery reverted. Now the hub stores the form the gateway accepts, and the message goes
through. Real processes: the API, Celery workers, Postgres, Redis, anvil."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_account import Account

from hub.domain.attestation import attestation_digest, sign_digest
from tests.integration.relay.chain import contract, delivered_counts
from tests.integration.relay.stack import Stack, wait_for
from tests.integration.relay.test_relay import message_state, post

pytestmark = pytest.mark.integration
Chains = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ValidatorWorker:
    index: int  # validator-{index + 1}, with the devnet's validator key `index`
    key: str

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)

    @property
    def name(self) -> str:
        return f"validator-{self.index + 1}"


def by_address(stack: Stack) -> list[ValidatorWorker]:
    workers = [ValidatorWorker(i, stack.key("validator", i)) for i in range(3)]
    return sorted(workers, key=lambda w: int(w.address, 16))


def test_signature_with_v_0_or_1_is_stored_as_the_gateway_accepts(
    stack: Stack, chains: Chains
) -> None:
    alpha, gamma = chains["alpha"], chains["gamma"]
    lowest, middle, highest = by_address(stack)
    # The lowest-address validator's worker is stopped: its signatures come over the API, as
    # its operator (or anyone holding them) posts them. The middle one is stopped too, so the
    # posted signature is surely one of the two the hub submits.
    stack.kill(lowest.name, signal.SIGTERM)
    stack.kill(middle.name, signal.SIGTERM)
    try:
        message_id = post(stack, alpha, gamma["chain_id"], gamma["inbox"], b"v is 0 or 1")
        wait_for("the message final", lambda: message_state(stack, message_id) == "finalized")
        epoch = stack.get("/v1/chains/gamma")["relay"]["validator_epoch"]
        digest = attestation_digest(
            bytes.fromhex(message_id[2:]), epoch, gamma["chain_id"], gamma["gateway"]
        )
        signature = sign_digest(digest, lowest.key)
        raw_v = signature[:64] + bytes([signature[64] - 27])  # v = 0 or 1
        answer = httpx.post(
            f"{stack.api}/v1/messages/{message_id}/attestations",
            json={"signature": "0x" + raw_v.hex()},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["signer"] == lowest.address

        wait_for(
            "the message delivered",
            lambda: message_state(stack, message_id) == "delivered",
            timeout=60,
        )
    finally:
        stack.start_validator(lowest.index)
        stack.start_validator(middle.index)
    assert delivered_counts(gamma)[message_id] == 1
    inbox = contract(gamma, "Inbox", gamma["inbox"])
    assert inbox.functions.lastPayload().call() == b"v is 0 or 1"
    stored = {
        a["validator"]: a["signature"]
        for a in stack.get(f"/v1/messages/{message_id}")["attestations"]
    }
    assert stored[lowest.address] == "0x" + signature.hex()
    assert stored[lowest.address][-2:] in ("1b", "1c")
    assert highest.address in stored
