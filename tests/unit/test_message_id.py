"""Message ids and finality policies, with vectors taken from the deployed Gateway.

The expected ids below were computed by `Gateway.messageId(...)` on anvil (Solidity's
`keccak256(abi.encode(m))` of a version 2 message); the conformance suite and the gateway
security tests check the same against live gateways.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest
from eth_abi.abi import encode
from eth_abi.exceptions import EncodingError
from eth_utils.crypto import keccak

from adapters.base import (
    MESSAGE_ABI_TYPE,
    MESSAGE_VERSION,
    FinalityKind,
    FinalityPolicy,
    Message,
)

VECTORS = [
    (
        Message(
            src_chain_id=1,
            src_gateway="0x0000000000000000000000000000000000000003",
            dst_chain_id=2,
            nonce=0,
            sender="0x0000000000000000000000000000000000000001",
            recipient="0x0000000000000000000000000000000000000002",
            gas_limit=200_000,
            payload=b"",
        ),
        "c8db7d93e0395b84aaef80cfb0ef08b74ce5903a1f2968a24892dd9ea2cbfd0f",
    ),
    (
        Message(
            src_chain_id=31337,
            src_gateway="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            dst_chain_id=31338,
            nonce=7,
            sender="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            recipient="0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
            gas_limit=500_000,
            payload=b"hello",
        ),
        "17294b5edab9bb5071c7b5e253f0f6b82e90093b03af89b14bf6a31b0d50f41c",
    ),
    (
        Message(
            src_chain_id=2**64 - 1,
            src_gateway="0x" + "cd" * 20,
            dst_chain_id=1,
            nonce=2**64 - 1,
            sender="0x" + "ff" * 20,
            recipient="0x" + "ab" * 20,
            gas_limit=2**64 - 1,
            payload=bytes(range(70)),
        ),
        "79f6176af9d0ead2913b2bf7c94b5613712b2bd3afad3deb1721bf643eec0d24",
    ),
]


@pytest.mark.parametrize(("message", "expected"), VECTORS)
def test_message_id_matches_solidity(message: Message, expected: str) -> None:
    assert message.version == MESSAGE_VERSION == 2
    assert message.id.hex() == expected


def test_message_id_is_keccak_of_the_abi_tuple() -> None:
    message = VECTORS[1][0]
    assert MESSAGE_ABI_TYPE == "(uint8,uint64,address,uint64,uint64,address,address,uint64,bytes)"
    assert message.id == keccak(encode([MESSAGE_ABI_TYPE], [message.as_tuple()]))
    assert len(message.id) == 32


def test_message_id_ignores_address_case() -> None:
    message = VECTORS[1][0]
    lowered = replace(
        message,
        src_gateway=message.src_gateway.lower(),
        sender=message.sender.lower(),
        recipient=message.recipient.lower(),
    )
    assert lowered.id == message.id


def test_message_fields_are_named() -> None:
    """Positional construction is refused: v1 call sites cannot silently shift fields."""
    with pytest.raises(TypeError):
        Message(1, "0x" + "00" * 20, 2, 0, "0x" + "00" * 20, "0x" + "00" * 20, 1, b"")  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": 8},
        {"src_chain_id": 1},
        {"src_gateway": "0x" + "00" * 19 + "01"},
        {"dst_chain_id": 1},
        {"payload": b"hellO"},
        {"version": 1},
        {"recipient": "0x" + "00" * 19 + "01"},
        {"sender": "0x" + "00" * 19 + "01"},
        {"gas_limit": 500_001},
    ],
)
def test_every_field_changes_the_id(change: dict[str, object]) -> None:
    base = VECTORS[1][0]
    fields = asdict(base) | change
    assert Message(**fields).id != base.id  # type: ignore[arg-type]


def test_out_of_range_fields_are_refused() -> None:
    message = VECTORS[0][0]
    with pytest.raises(EncodingError, match="64 bits"):
        _ = replace(message, src_chain_id=2**64).id
    with pytest.raises(EncodingError, match="64 bits"):
        _ = replace(message, gas_limit=2**64).id


@pytest.mark.parametrize(
    ("value", "kind", "depth"),
    [
        (0, FinalityKind.DEPTH, 0),
        (2, FinalityKind.DEPTH, 2),
        ("12", FinalityKind.DEPTH, 12),
        (10_000, FinalityKind.DEPTH, 10_000),
        ("safe", FinalityKind.SAFE, 0),
        ("finalized", FinalityKind.FINALIZED, 0),
    ],
)
def test_finality_parse(value: int | str, kind: FinalityKind, depth: int) -> None:
    policy = FinalityPolicy.parse(value)
    assert policy.kind is kind
    assert policy.depth == depth
    assert FinalityPolicy.parse(policy.as_value()) == policy


@pytest.mark.parametrize("value", [-1, 10_001, "latest", "", "1.5", "-3", True, "SAFE"])
def test_finality_parse_refuses(value: int | str) -> None:
    with pytest.raises(ValueError, match="finality"):
        FinalityPolicy.parse(value)


def test_finality_as_value() -> None:
    assert FinalityPolicy.parse(5).as_value() == 5
    assert FinalityPolicy.parse("safe").as_value() == "safe"
