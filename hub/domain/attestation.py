"""EIP-712 attestations: the digest validators sign, and recovering who signed it.

The domain names the destination chain and gateway, and the struct binds the validator-set
epoch, so a signature is good for one message, one gateway, one set.
"""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_keys.constants import SECPK1_N
from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

DOMAIN_NAME = "IslandsGateway"
DOMAIN_VERSION = "1"
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ATTESTATION_TYPEHASH = keccak(text="Attestation(bytes32 messageId,uint64 epoch)")


def domain_separator(dst_chain_id: int, gateway: str) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPEHASH,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                dst_chain_id,
                to_checksum_address(gateway),
            ],
        )
    )


def attestation_digest(message_id: bytes, epoch: int, dst_chain_id: int, gateway: str) -> bytes:
    """The digest the destination gateway's `attestationDigest(id, epoch)` returns."""
    struct_hash = keccak(
        abi_encode(["bytes32", "bytes32", "uint64"], [ATTESTATION_TYPEHASH, message_id, epoch])
    )
    return keccak(b"\x19\x01" + domain_separator(dst_chain_id, gateway) + struct_hash)


def sign_digest(digest: bytes, private_key: str) -> bytes:
    """A 65-byte (r, s, v) signature, as the gateway's ECDSA.recover takes it."""
    signed = Account.unsafe_sign_hash(digest, private_key)
    return bytes(signed.signature)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that made `signature`; ValueError when it is malformed or
    malleable (high s), which the gateway's ECDSA.recover refuses too."""
    if len(signature) != 65:
        raise ValueError(f"a signature is 65 bytes, not {len(signature)}")
    s = int.from_bytes(signature[32:64], "big")
    if s > SECPK1_N // 2:
        raise ValueError("signature has a high s value (malleable)")
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    if v not in (0, 1):
        raise ValueError(f"signature has an invalid v value {signature[64]}")
    try:
        public = Signature(signature[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError) as exc:
        raise ValueError(f"signature does not recover: {exc}") from None
    return str(public.to_checksum_address())
