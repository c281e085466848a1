"""Signature recovery as the attestation endpoint does it, against eth_keys' pure-Python
backend (what the hub used before coincurve). Prints a table of microseconds per recovery.

    .venv/bin/python bench/recover_signer.py [-n 500]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from eth_account import Account
from eth_keys.backends.native.main import NativeECCBackend
from eth_keys.datatypes import Signature

from hub.domain.attestation import attestation_digest, recover_signer, sign_digest

KEY = "0x" + "11" * 32


def pure_python(digest: bytes, signature: bytes) -> str:
    sig = Signature(signature[:64] + bytes([signature[64] - 27]), backend=NativeECCBackend())
    return str(sig.recover_public_key_from_msg_hash(digest).to_checksum_address())


def per_call(fn: Callable[[bytes, bytes], str], items: list[tuple[bytes, bytes]]) -> float:
    """Median over 5 runs of the seconds one recovery takes."""
    expected = Account.from_key(KEY).address
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for digest, signature in items:
            assert fn(digest, signature) == expected
        runs.append((time.perf_counter() - start) / len(items))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=500, help="signatures per run")
    n = parser.parse_args().n
    digests = [
        attestation_digest(i.to_bytes(32, "big"), 1, 31337, "0x" + "22" * 20) for i in range(n)
    ]
    items = [(d, sign_digest(d, KEY)) for d in digests]
    print(f"| backend | us per recovery (median of 5 x {n}) |")
    print("| --- | --- |")
    print(f"| eth_keys pure Python | {per_call(pure_python, items[: max(1, n // 10)]) * 1e6:.0f} |")
    print(f"| coincurve (hub.domain.attestation) | {per_call(recover_signer, items) * 1e6:.0f} |")


if __name__ == "__main__":
    main()
