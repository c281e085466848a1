"""EIP-712 attestations: the digest validators sign, and recovering who signed it.

The domain names the destination chain and gateway, and the struct binds the validator-set
epoch, so a signature is good for one message, one gateway, one set.
"""

from __future__ import annotations

from functools import lru_cache

from coincurve import PrivateKey, PublicKey
from eth_abi.abi import encode as abi_encode
from eth_keys.constants import SECPK1_N
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

DOMAIN_NAME = "IslandsGateway"
DOMAIN_VERSION = "1"
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ATTESTATION_TYPEHASH = keccak(text="Attestation(bytes32 messageId,uint64 epoch)")


@lru_cache(maxsize=64)  # one per destination gateway: computed once, not per message
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
    """A 65-byte (r, s, v) signature, as the gateway's ECDSA.recover takes it: libsecp256k1
    through coincurve (deterministic RFC 6979 nonces, low s), v 27/28."""
    signed = _private_key(private_key).sign_recoverable(digest, hasher=None)
    return signed[:64] + bytes([signed[64] + 27])


@lru_cache(maxsize=8)  # a process signs with one key or a few; parsing it once is enough
def _private_key(private_key: str) -> PrivateKey:
    return PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))


def normalize_signature(signature: bytes) -> bytes:
    """The 65-byte (r, s, v) form the gateway's ECDSA.recover accepts: v is 27 or 28 (0 and 1,
    as some signers write it, become 27 and 28), s is in the lower half of the curve order.
    ValueError for anything else: OpenZeppelin refuses high s (malleable) and other v."""
    if len(signature) != 65:
        raise ValueError(f"a signature is 65 bytes, not {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECPK1_N and 0 < s < SECPK1_N):
        raise ValueError("signature has r or s out of range")
    if s > SECPK1_N // 2:
        raise ValueError("signature has a high s value (malleable)")
    v = signature[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise ValueError(f"signature has an invalid v value {signature[64]}")
    return signature[:64] + bytes([v])


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that made `signature` (libsecp256k1 through coincurve);
    ValueError when the signature is not one the gateway would accept (see
    `normalize_signature`) or does not recover."""
    normal = normalize_signature(signature)
    try:
        public = PublicKey.from_signature_and_message(
            normal[:64] + bytes([normal[64] - 27]), digest, hasher=None
        )
    except ValueError as exc:
        raise ValueError(f"signature does not recover: {exc}") from None
    return to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:])
