"""Compiled contract artifacts (ABI and bytecode) shipped beside the EVM adapter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACT_NAMES = ("Gateway", "TokenBridge", "BridgedToken", "TestToken")


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
