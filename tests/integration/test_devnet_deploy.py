"""`islands devnet deploy` on a chain a user runs: who holds each role, and refusing anvil's
public dev keys unless asked (issue 6: it silently made them owner and validators)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint

from adapters.evm.devnet import DEPLOYER, DEV_ACCOUNTS, VALIDATORS, DevAccount, Transactor
from adapters.evm.devnet import contract as load_contract
from tests.integration.helpers import islands, plain_anvil

pytestmark = pytest.mark.integration

CHAIN_ID = 4343
STRANGERS = ["0x" + c * 40 for c in "123"]


@pytest.fixture(scope="module")
def rpc_url() -> Iterator[str]:
    with plain_anvil(CHAIN_ID) as url:
        yield url


def _funded(rpc_url: str) -> DevAccount:
    account = Account.create()
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [account.address, hex(10**20)])
    return DevAccount(account.address, account.key.to_0x_hex())


def _deploy(rpc_url: str, *options: str, key: str = "") -> Any:
    return islands("devnet", "deploy", "--rpc", rpc_url, *options, ISLANDS_DEPLOYER_KEY=key)


def _nonce(rpc_url: str, address: str) -> int:
    return Web3(Web3.HTTPProvider(rpc_url)).eth.get_transaction_count(address)


def test_refuses_without_validators(rpc_url: str) -> None:
    result = _deploy(rpc_url)
    assert result.returncode == 1
    assert "--validator" in result.stderr and "--dev-keys" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _nonce(rpc_url, DEPLOYER.address) == 0  # nothing was deployed


@pytest.mark.parametrize(
    ("role", "options", "key"),
    [
        ("deployer", STRANGERS[:1], DEPLOYER.private_key),
        ("validator", [STRANGERS[0], VALIDATORS[0].address], ""),
        ("owner", [STRANGERS[0]], ""),
        ("guardian", [STRANGERS[0]], ""),
    ],
)
def test_refuses_public_dev_accounts_in_any_role(
    rpc_url: str, role: str, options: list[str], key: str
) -> None:
    account = _funded(rpc_url)
    args = [arg for validator in options for arg in ("--validator", validator)]
    if role in ("owner", "guardian"):
        args += [f"--{role}", DEV_ACCOUNTS[5].address]
    result = _deploy(rpc_url, *args, key=key or account.private_key)
    assert result.returncode == 1, result.stdout
    assert f"{role} 0x" in result.stderr and "--dev-keys" in result.stderr
    assert _nonce(rpc_url, account.address) == 0


def test_dev_keys_on_a_throwaway_chain(rpc_url: str) -> None:
    result = _deploy(rpc_url, "--dev-keys")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    dev_set = [v.address for v in VALIDATORS]
    assert out["chain_id"] == CHAIN_ID
    assert (out["owner"], out["guardian"], out["pending_owner"]) == (
        DEPLOYER.address,
        DEPLOYER.address,
        "",
    )
    assert (out["validators"], out["threshold"]) == (dev_set, 2)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    gateway = load_contract(w3, "Gateway", out["gateway"]).functions
    assert gateway.getValidators().call() == dev_set and gateway.threshold().call() == 2
    bridge = load_contract(w3, "TokenBridge", out["bridge"]).functions
    assert bridge.guardian().call() == DEPLOYER.address


def test_own_keys_and_a_two_step_owner(rpc_url: str) -> None:
    deployer, owner, guardian = _funded(rpc_url), _funded(rpc_url), Account.create().address
    options = [arg for v in STRANGERS for arg in ("--validator", v)]
    options += ["--owner", owner.address, "--guardian", guardian]
    result = _deploy(rpc_url, *options, key=deployer.private_key)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["validators"] == [Web3.to_checksum_address(v) for v in STRANGERS]
    assert out["threshold"] == 2  # a majority of three
    assert (out["owner"], out["pending_owner"], out["guardian"]) == (
        deployer.address,
        owner.address,
        guardian,
    )
    assert "acceptOwnership()" in result.stderr and owner.address in result.stderr
    assert deployer.private_key.removeprefix("0x") not in result.stdout + result.stderr

    w3 = Web3(Web3.HTTPProvider(rpc_url))
    contracts = [
        load_contract(w3, "Gateway", out["gateway"]),
        load_contract(w3, "TokenBridge", out["bridge"]),
    ]
    assert contracts[1].functions.guardian().call() == guardian
    tx = Transactor(w3, owner.private_key)
    for c in contracts:
        assert c.functions.owner().call() == deployer.address  # until the owner accepts
        assert c.functions.pendingOwner().call() == owner.address
        tx.send(c.functions.acceptOwnership(), "acceptOwnership")
    tx.wait()
    assert [c.functions.owner().call() for c in contracts] == [owner.address] * 2
