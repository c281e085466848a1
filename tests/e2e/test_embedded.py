"""The embedded form as a newcomer runs it: `islands up`, a transfer and a plain message with
the CLI, their state over REST, balances on the chain, then Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.evm.demo import itt_on
from adapters.evm.nodes import port_free
from tests.conftest import ROOT, free_port
from tests.fixtures.chains import free_port_block
from tests.integration.relay.chain import Sender, balance, contract, rpc
from tests.integration.relay.stack import wait_for

ITT = 10**18


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("embedded")
    base, port = free_port_block(3), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = f"sqlite:///{state / 'hub.db'}"
    log = (state / "up.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "islands"),
            "up",
            "--base-port",
            str(base),
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--block-time",
            "0.25",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    output = state / "up.log"
    wait_for("the hub to start", lambda: b"Press Ctrl-C" in output.read_bytes(), timeout=60)
    token = next(
        line.split()[-1] for line in output.read_text().splitlines() if "admin token" in line
    )
    yield {
        "proc": proc,
        "api": f"http://127.0.0.1:{port}",
        "state": state,
        "base": base,
        "token": token,
        "log": output,
    }
    if proc.poll() is None:  # a test failed before Ctrl-C: stop it as a user would
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # its anvils die with it (PR_SET_PDEATHSIG)


def run_cli(hub: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """`islands devnet ARGS --devnet-file ...`, as a user types it."""
    command = [str(Path(sys.executable).parent / "islands"), "devnet", *args]
    command += ["--devnet-file", str(hub["state"] / "devnet.json")]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def cli(hub: dict[str, Any], *args: str) -> dict[str, Any]:
    result = run_cli(hub, *args)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def delivered(hub: dict[str, Any], message_id: str) -> Any:
    answer = httpx.get(f"{hub['api']}/v1/messages/{message_id}", timeout=10)
    return (
        answer.json()
        if answer.status_code == 200 and answer.json()["state"] == "delivered"
        else None
    )


def test_transfer_and_message_cross_in_one_process(hub: dict[str, Any]) -> None:
    doc = json.loads((hub["state"] / "devnet.json").read_text())
    chains = {c["name"]: c for c in doc["chains"]}
    user = next(a["address"] for a in doc["accounts"] if a["role"] == "user")
    before = balance(doc, chains["beta"], user)
    sent = cli(hub, "bridge", "--from", "alpha", "--to", "beta", "--amount", "100")
    transfers = httpx.get(f"{hub['api']}/v1/transfers", params={"src_tx_hash": sent["src_tx_hash"]})
    message = wait_for("the transfer delivered", lambda: delivered(hub, sent["message_id"]), 30)
    assert [s["state"] for s in message["timeline"]] == [
        "observed",
        "finalized",
        "attested",
        "submitted",
        "delivered",
    ]
    assert transfers.status_code == 200
    assert balance(doc, chains["beta"], user) == before + 100 * ITT
    assert itt_on(doc, "beta") == doc["asset"]["deployments"]["beta"]

    note = cli(hub, "send", "--from", "beta", "--to", "gamma", "--text", "hello")
    wait_for("the message delivered", lambda: delivered(hub, note["message_id"]), 30)

    def settled() -> Any:
        supply = httpx.get(f"{hub['api']}/v1/assets/ITT", timeout=10).json()["supply"]
        return supply if supply["in_flight"] == "0" and supply["wrapped"]["beta"] != "0" else None

    supply = wait_for("the supply settled", settled, 30)
    assert supply["balanced"] is True and supply["wrapped"]["beta"] == str(100 * ITT)


def test_bad_cli_input_is_a_message_not_a_traceback(hub: dict[str, Any]) -> None:
    result = run_cli(hub, "bridge", "--from", "alpha", "--to", "nowhere", "--amount", "-1")
    assert result.returncode == 1 and "error:" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli(hub, "bridge", "--from", "alpha", "--to", "nowhere", "--amount", "5")
    assert result.returncode == 1 and "no devnet chain named 'nowhere'" in result.stderr


def test_a_looping_recipient_stops_no_chain(hub: dict[str, Any]) -> None:
    """Issue 6, attack 1, in the embedded form: a message to a recipient that loops forever is
    set aside as failed, and every chain's relaying goes on in the same loop."""
    doc = json.loads((hub["state"] / "devnet.json").read_text())
    chains = {c["name"]: c for c in doc["chains"]}
    alpha, beta = chains["alpha"], chains["beta"]
    looper = "0x1010101010101010101010101010101010101010"
    rpc(beta, "anvil_setCode", looper, "0x5b600056")  # JUMPDEST PUSH1 0 JUMP
    key = next(a["private_key"] for a in doc["accounts"] if a["role"] == "user")
    sender = Sender(alpha, key)
    gateway = contract(alpha, "Gateway", alpha["gateway"])
    send = gateway.get_function_by_signature("send(uint64,address,bytes)")
    receipt = sender.wait(sender.send(send(beta["chain_id"], looper, b"spin")))
    looping = (
        "0x" + bytes(gateway.events.MessageSent().process_receipt(receipt)[0]["args"]["id"]).hex()
    )
    to_beta = cli(hub, "bridge", "--from", "alpha", "--to", "beta", "--amount", "1")
    to_gamma = cli(hub, "bridge", "--from", "alpha", "--to", "gamma", "--amount", "1")
    for sent in (to_beta, to_gamma):
        wait_for("a transfer delivered", lambda s=sent: delivered(hub, s["message_id"]), 60)

    def failed() -> Any:
        answer = httpx.get(f"{hub['api']}/v1/messages/{looping}", timeout=10).json()
        return answer if answer["state"] == "failed" else None

    assert wait_for("the looping message failed", failed, 60)["last_error"]


def test_ctrl_c_stops_everything(hub: dict[str, Any]) -> None:
    hub["proc"].send_signal(signal.SIGINT)
    assert hub["proc"].wait(timeout=20) == 0
    assert "Stopped." in hub["log"].read_text()
    time.sleep(0.5)
    assert all(port_free(hub["base"] + i) for i in range(3)), "an anvil was left running"
