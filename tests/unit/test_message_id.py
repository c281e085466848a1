"""Message ids and finality policies, with vectors taken from the deployed Gateway.

The expected ids below were computed by `Gateway.messageId(...)` on anvil (Solidity's
`keccak256(abi.encode(m))`); the conformance suite checks the same against a live gateway.
"""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_abi.exceptions import EncodingError
from eth_utils.crypto import keccak

from adapters.base import MESSAGE_ABI_TYPE, FinalityKind, FinalityPolicy, Message

VECTORS = [
    (
        Message(
            1,
            2,
            0,
            "0x0000000000000000000000000000000000000001",
            "0x0000000000000000000000000000000000000002",
            b"",
        ),
        "6611cbf53fffc9e14d125d338e9d8274ccb42dd9f8b9a6825a4e4e95727acfc9",
    ),
    (
        Message(
            31337,
            31338,
            7,
            "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
            b"hello",
        ),
        "671360b865d96f1e42eb483b58e07bc52cfe0cd0857bc0904d482ee676a8ce19",
    ),
    (
        Message(2**64 - 1, 1, 2**64 - 1, "0x" + "ff" * 20, "0x" + "ab" * 20, bytes(range(70))),
        "98c41c2558662073a75cd3886d72db79a007d2eec6da50bdff25218e9f7e30fc",
    ),
]


@pytest.mark.parametrize(("message", "expected"), VECTORS)
def test_message_id_matches_solidity(message: Message, expected: str) -> None:
    assert message.id.hex() == expected


def test_message_id_is_keccak_of_the_abi_tuple() -> None:
    message = VECTORS[1][0]
    assert message.id == keccak(encode([MESSAGE_ABI_TYPE], [message.as_tuple()]))
    assert len(message.id) == 32


def test_message_id_ignores_address_case() -> None:
    message = VECTORS[1][0]
    lowered = Message(
        message.src_chain_id,
        message.dst_chain_id,
        message.nonce,
        message.sender.lower(),
        message.recipient.lower(),
        message.payload,
    )
    assert lowered.id == message.id


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": 8},
        {"src_chain_id": 1},
        {"dst_chain_id": 1},
        {"payload": b"hellO"},
        {"version": 2},
        {"recipient": "0x" + "00" * 19 + "01"},
    ],
)
def test_every_field_changes_the_id(change: dict[str, object]) -> None:
    base = VECTORS[1][0]
    fields = {
        "src_chain_id": base.src_chain_id,
        "dst_chain_id": base.dst_chain_id,
        "nonce": base.nonce,
        "sender": base.sender,
        "recipient": base.recipient,
        "payload": base.payload,
        "version": base.version,
    }
    fields.update(change)
    assert Message(**fields).id != base.id  # type: ignore[arg-type]


def test_out_of_range_fields_are_refused() -> None:
    with pytest.raises(EncodingError, match="64 bits"):
        _ = Message(2**64, 1, 0, "0x" + "00" * 20, "0x" + "00" * 20, b"").id


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
