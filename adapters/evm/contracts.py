"""Compiled contract artifacts (ABI and bytecode) shipped beside the EVM adapter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
# Every compiled contract, as `make contracts` wrote them.
CONTRACT_NAMES = tuple(sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json")))


class ArtifactError(RuntimeError):
    """A compiled artifact is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of one contract by name (e.g. "Gateway"), read once per process."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"no compiled artifact for {name!r} at {path}; compile the contracts first"
        ) from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "abi" not in data or "bytecode" not in data:
        raise ArtifactError(f"artifact {path} lacks the keys 'abi' and 'bytecode'")
    bytecode = str(data["bytecode"])
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return Artifact(name=name, abi=tuple(data["abi"]), bytecode=bytecode)


def abi(name: str) -> list[dict[str, Any]]:
    """The ABI of one contract, as web3 takes it."""
    return list(load_artifact(name).abi)


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _error_signature(entry: dict[str, Any]) -> tuple[str, list[str]]:
    types = [str(i["type"]) for i in entry.get("inputs", [])]
    return f"{entry['name']}({','.join(types)})", types


@cache
def custom_errors() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    """selector -> (error name, argument types) over every artifact's custom errors."""
    errors: dict[bytes, tuple[str, tuple[str, ...]]] = {}
    for name in CONTRACT_NAMES:
        for entry in load_artifact(name).abi:
            if entry.get("type") == "error":
                signature, types = _error_signature(entry)
                errors[_selector(signature)] = (str(entry["name"]), tuple(types))
    return errors


def _format_arg(abi_type: str, value: object) -> str:
    """Bytes as hex, addresses checksummed (EIP-55), anything else as Python prints it."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    return str(value)


def decode_revert(data: bytes) -> str:
    """Readable revert data: Error(string), Panic(uint256), or an Islands custom error."""
    if not data:
        return "reverted without a reason"
    selector, body = data[:4], data[4:]
    try:
        if selector == _selector("Error(string)"):
            return str(abi_decode(["string"], body)[0])
        if selector == _selector("Panic(uint256)"):
            return f"panic 0x{int(abi_decode(['uint256'], body)[0]):02x}"
        known = custom_errors().get(selector)
        if known is not None:
            args = abi_decode(list(known[1]), body)
            shown = (_format_arg(t, a) for t, a in zip(known[1], args, strict=True))
            return f"{known[0]}({', '.join(shown)})"
    except Exception:  # malformed data or missing artifacts: show it raw
        return "0x" + data.hex()
    return "0x" + data.hex()
