"""The token bridge's payload: what a transfer message carries."""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

TRANSFER_TYPES = ["uint64", "address", "address", "address", "uint256"]


@dataclass(frozen=True, slots=True)
class TransferPayload:
    home_chain_id: int
    home_token: str
    sender: str
    recipient: str
    amount: int


def decode_transfer(payload: bytes) -> TransferPayload | None:
    """`abi.encode(homeChainId, homeToken, from, to, amount)`; None when it is not one."""
    try:
        home, token, sender, recipient, amount = abi_decode(TRANSFER_TYPES, payload, strict=True)
    except (DecodingError, ValueError, OverflowError):
        return None
    return TransferPayload(
        int(home),
        to_checksum_address(token),
        to_checksum_address(sender),
        to_checksum_address(recipient),
        int(amount),
    )
