"""Signature recovery: the forms a signer may write, and the ones the gateway refuses."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_keys.constants import SECPK1_N

from hub.domain.attestation import (
    attestation_digest,
    normalize_signature,
    recover_signer,
    sign_digest,
)

KEY = "0x" + "42" * 32
SIGNER = Account.from_key(KEY).address
DIGEST = attestation_digest(b"\x01" * 32, 1, 31337, "0x" + "22" * 20)


def test_recovers_the_signer() -> None:
    signature = sign_digest(DIGEST, KEY)
    assert signature[64] in (27, 28)
    assert recover_signer(DIGEST, signature) == SIGNER


def test_v_zero_or_one_is_normalized_to_27_or_28() -> None:
    signature = sign_digest(DIGEST, KEY)
    raw_v = signature[:64] + bytes([signature[64] - 27])
    assert normalize_signature(raw_v) == signature
    assert recover_signer(DIGEST, raw_v) == SIGNER


def test_high_s_twin_is_refused() -> None:
    signature = sign_digest(DIGEST, KEY)
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECPK1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(ValueError, match="high s"):
        recover_signer(DIGEST, twin)


@pytest.mark.parametrize(
    ("mangle", "needle"),
    [
        (lambda sig: sig[:64] + bytes([2]), "invalid v"),
        (lambda sig: sig[:64] + bytes([29]), "invalid v"),
        (lambda sig: sig[:64], "65 bytes"),
        (lambda sig: bytes(32) + sig[32:], "out of range"),
    ],
)
def test_malformed_signatures_are_refused(mangle: object, needle: str) -> None:
    signature = sign_digest(DIGEST, KEY)
    with pytest.raises(ValueError, match=needle):
        recover_signer(DIGEST, mangle(signature))  # type: ignore[operator]


def test_another_digest_recovers_someone_else() -> None:
    other = attestation_digest(b"\x02" * 32, 1, 31337, "0x" + "22" * 20)
    assert recover_signer(other, sign_digest(DIGEST, KEY)) != SIGNER
