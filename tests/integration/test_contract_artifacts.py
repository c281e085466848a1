"""The committed ABI and bytecode are what the Solidity sources compile to."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.conftest import ROOT

ARTIFACTS = ROOT / "adapters" / "evm" / "artifacts"


def test_committed_artifacts_are_not_stale() -> None:
    node = shutil.which("node")
    assert node, "node is needed to compile the contracts (make setup installs solc)"
    result = subprocess.run(
        [node, "adapters/evm/build.mjs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"stale artifacts, run `make contracts`:\n{result.stdout}{result.stderr}"
    )


def test_artifacts_have_the_fixed_interface() -> None:
    for name in ("Gateway", "TokenBridge", "BridgedToken", "TestToken"):
        artifact = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert artifact["abi"] and artifact["bytecode"].startswith("0x")
    gateway = json.loads((ARTIFACTS / "Gateway.json").read_text())["abi"]
    functions = {f["name"]: f for f in gateway if f["type"] == "function"}
    sends = sorted([i["type"] for i in f["inputs"]] for f in gateway if f.get("name") == "send")
    assert sends == [["uint64", "address", "bytes"], ["uint64", "address", "bytes", "uint64"]]
    assert all(
        [o["type"] for o in f["outputs"]] == ["bytes32"] for f in gateway if f.get("name") == "send"
    )
    assert [o["type"] for o in functions["delivered"]["outputs"]] == ["bool"]
    message = ["uint8", "uint64", "address", "uint64", "uint64", "address", "address", "uint64"]
    consume = functions["consume"]["inputs"]
    assert [c["type"] for c in consume[0]["components"]] == [*message, "bytes"]
    bridge = json.loads((ARTIFACTS / "TokenBridge.json").read_text())["abi"]
    bridge_out = next(f for f in bridge if f.get("name") == "bridgeOut")
    assert [i["type"] for i in bridge_out["inputs"]] == ["address", "uint64", "address", "uint256"]
    names = {f["name"] for f in bridge if f["type"] in ("function", "event", "error")}
    assert {
        "setRateLimit",
        "rateLimit",
        "RateLimited",
        "returnToSender",
        "TransferReturned",
    } <= names
    assert {"guardian", "setGuardian", "pause", "unpause", "acceptOwnership"} <= names
