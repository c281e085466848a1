"""The local devnet: chains (anvil, or any node of adapters.evm.nodes) with the Islands
contracts deployed and wired together.

Usable from the CLI and from tests; nothing here starts a process or opens a connection at
import time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

from eth_account import Account
from eth_typing import ABI, ChecksumAddress
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import Nonce, TxParams, TxReceipt

from adapters.evm.contracts import decode_revert, load_artifact
from adapters.evm.nodes import (
    DevnetError,
    LocalNode,
    NodeKind,
    NodeOptions,
    launch_node,
    rpc_chain_id,
)

log = logging.getLogger(__name__)

CHAIN_NAMES = ("alpha", "beta", "gamma")
TOKEN_NAME, TOKEN_SYMBOL, TOKEN_DECIMALS = "Island Test Token", "ITT", 18
TOKEN_SUPPLY = 1_000_000 * 10**18
USER_MINT = 1_000 * 10**18
DEVNET_FINALITY = 2
VALIDATOR_THRESHOLD = 2
RECEIPT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class DevAccount:
    address: str
    private_key: str


# The first ten accounts of anvil's default mnemonic (m/44'/60'/0'/0/i).
DEV_ACCOUNTS: tuple[DevAccount, ...] = (
    DevAccount(
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    DevAccount(
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    DevAccount(
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ),
    DevAccount(
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    ),
    DevAccount(
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    ),
    DevAccount(
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    ),
    DevAccount(
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    ),
    DevAccount(
        "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    ),
    DevAccount(
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
        "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    ),
    DevAccount(
        "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
        "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    ),
)
DEPLOYER = DEV_ACCOUNTS[0]
RELAYER = DEV_ACCOUNTS[1]
USER = DEV_ACCOUNTS[2]
VALIDATORS = DEV_ACCOUNTS[7:10]
ACCOUNT_ROLES: dict[int, str] = {0: "deployer", 1: "relayer", 2: "user", 7: "validator"}
ACCOUNT_ROLES.update({8: "validator", 9: "validator"})


def is_dev_account(address: str) -> bool:
    """Whether `address` is one of anvil's public dev accounts (anyone has their keys)."""
    return address.lower() in {a.address.lower() for a in DEV_ACCOUNTS}


def account_role(index: int) -> str:
    """The devnet role of dev account `index` ("spare" when it has none)."""
    return ACCOUNT_ROLES.get(index, "spare")


def chain_name(index: int) -> str:
    """alpha, beta, gamma, then chain-4, chain-5, ..."""
    return CHAIN_NAMES[index] if index < len(CHAIN_NAMES) else f"chain-{index + 1}"


# -- deployment --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deployment:
    """The Islands contracts on one chain, and who holds their roles."""

    chain_id: int
    gateway: str
    bridge: str
    test_token: str
    owner: str
    inbox: str = ""
    guardian: str = ""
    # set by transfer_ownership: owner of Gateway and TokenBridge once it calls acceptOwnership
    pending_owner: str = ""


def connect(rpc_url: str, timeout: float = 10.0) -> Web3:
    """A Web3 for a devnet RPC URL; raises DevnetError when it does not answer."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    if rpc_chain_id(rpc_url, timeout=timeout) is None:
        raise DevnetError(f"the RPC at {rpc_url} does not answer (is the chain running?)")
    return w3


def contract(w3: Web3, name: str, address: str | None = None) -> Contract:
    """A web3 contract object for one of the Islands artifacts."""
    artifact = load_artifact(name)
    contract_abi = cast(ABI, list(artifact.abi))
    if address is None:
        return cast(Contract, w3.eth.contract(abi=contract_abi, bytecode=artifact.bytecode))
    return w3.eth.contract(address=to_checksum_address(address), abi=contract_abi)


class Transactor:
    """Signs and sends transactions from one key with locally tracked nonces."""

    def __init__(self, w3: Web3, private_key: str) -> None:
        self.w3 = w3
        self.account = Account.from_key(private_key)
        self.address: ChecksumAddress = self.account.address
        self.chain_id = w3.eth.chain_id
        self.nonce: int = w3.eth.get_transaction_count(self.address, "pending")
        self._pending: list[tuple[str, HexBytes]] = []

    def send(self, call: ContractFunction | ContractConstructor, what: str) -> HexBytes:
        params: TxParams = {
            "from": self.address,
            "nonce": Nonce(self.nonce),
            "chainId": self.chain_id,
        }
        try:
            tx = call.build_transaction(params)
        except ContractLogicError as exc:
            reason = _revert_text(exc)
            raise DevnetError(f"{what} on chain {self.chain_id} would revert: {reason}") from None
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.nonce += 1
        self._pending.append((what, tx_hash))
        return tx_hash

    def wait(self) -> list[TxReceipt]:
        """Receipts of everything sent since the last wait; raises if one reverted."""
        receipts = []
        for what, tx_hash in self._pending:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT, poll_latency=0.05
            )
            if receipt["status"] != 1:
                raise DevnetError(
                    f"{what} on chain {self.chain_id} reverted ({tx_hash.to_0x_hex()})"
                )
            receipts.append(receipt)
        self._pending.clear()
        return receipts


def _revert_text(exc: ContractLogicError) -> str:
    data = exc.data if isinstance(exc.data, str) else None
    if data and data.startswith("0x"):
        return decode_revert(HexBytes(data))
    return exc.message or str(exc)


def _created(receipt: TxReceipt, what: str) -> str:
    address = receipt.get("contractAddress")
    if not address:
        raise DevnetError(f"{what} created no contract")
    return to_checksum_address(address)


def deploy_contracts(
    rpc_url: str,
    deployer_key: str,
    validators: Sequence[str],
    threshold: int,
    *,
    guardian: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy Gateway, TokenBridge, TestToken ("ITT", 1M to the deployer) and the demo Inbox
    application on one chain. The deployer owns Gateway and TokenBridge; the bridge's guardian
    is `guardian` (default: the deployer). `on_step` hears each step as it starts."""
    step = on_step or (lambda _what: None)
    w3 = connect(rpc_url)
    tx = Transactor(w3, deployer_key)
    owner = tx.address
    members = [to_checksum_address(v) for v in validators]
    step("deploy Gateway and TestToken")
    tx.send(contract(w3, "Gateway").constructor(owner, members, threshold), "deploy Gateway")
    token_ctor = contract(w3, "TestToken").constructor(TOKEN_NAME, TOKEN_SYMBOL, TOKEN_SUPPLY)
    tx.send(token_ctor, "deploy TestToken")
    gateway_receipt, token_receipt = tx.wait()
    gateway = _created(gateway_receipt, "deploy Gateway")
    step("deploy TokenBridge and Inbox")
    tx.send(contract(w3, "TokenBridge").constructor(gateway, owner), "deploy TokenBridge")
    tx.send(contract(w3, "Inbox").constructor(gateway), "deploy Inbox")
    bridge_receipt, inbox_receipt = tx.wait()
    bridge = _created(bridge_receipt, "deploy TokenBridge")
    guardian = to_checksum_address(guardian or owner)
    step("set the bridge's guardian")
    tx.send(contract(w3, "TokenBridge", bridge).functions.setGuardian(guardian), "setGuardian")
    tx.wait()
    return Deployment(
        chain_id=tx.chain_id,
        gateway=gateway,
        bridge=bridge,
        test_token=_created(token_receipt, "deploy TestToken"),
        owner=owner,
        inbox=_created(inbox_receipt, "deploy Inbox"),
        guardian=guardian,
    )


def transfer_ownership(
    rpc_url: str, owner_key: str, deployment: Deployment, new_owner: str
) -> Deployment:
    """Start the two-step transfer of Gateway and TokenBridge to `new_owner`: the current
    owner keeps every power until `new_owner` calls `acceptOwnership()` on each."""
    w3 = connect(rpc_url)
    tx = Transactor(w3, owner_key)
    pending = to_checksum_address(new_owner)
    for name, address in (("Gateway", deployment.gateway), ("TokenBridge", deployment.bridge)):
        call = contract(w3, name, address).functions.transferOwnership(pending)
        tx.send(call, f"{name}.transferOwnership")
    tx.wait()
    return replace(deployment, pending_owner=pending)


def wrapped_name(home: str) -> str:
    return f"Wrapped {TOKEN_SYMBOL} ({home})"


def _wire_chain(
    tx: Transactor,
    here: Deployment,
    deployments: Mapping[int, Deployment],
    names: Mapping[int, str],
    user: str,
) -> None:
    bridge = contract(tx.w3, "TokenBridge", here.bridge)
    others = [d for cid, d in sorted(deployments.items()) if cid != here.chain_id]
    for other in others:
        call = bridge.functions.setRemoteBridge(other.chain_id, other.bridge)
        tx.send(call, f"setRemoteBridge({other.chain_id})")
    tx.send(bridge.functions.setNativeToken(here.test_token, True), "setNativeToken(ITT)")
    for home in others:
        name = wrapped_name(names.get(home.chain_id, str(home.chain_id)))
        call = bridge.functions.createWrapped(
            home.chain_id, home.test_token, name, f"w{TOKEN_SYMBOL}", TOKEN_DECIMALS
        )
        tx.send(call, f"createWrapped({home.chain_id})")
    token = contract(tx.w3, "TestToken", here.test_token)
    tx.send(token.functions.mint(to_checksum_address(user), USER_MINT), "mint ITT to the user")


def wire(
    deployments: Mapping[int, Deployment],
    rpc_urls: Mapping[int, str],
    owner_key: str,
    *,
    names: Mapping[int, str] | None = None,
    user: str = USER.address,
) -> dict[int, dict[int, str]]:
    """Connect every pair of bridges, allow each chain's ITT, create its wrapped copies
    elsewhere and give the user 1,000 ITT on every chain.

    Returns {home chain id: {chain id: address of the wrapped home ITT on that chain}}.
    """
    names = names or {}
    senders = {cid: Transactor(connect(rpc_urls[cid]), owner_key) for cid in sorted(deployments)}
    for cid, tx in senders.items():
        _wire_chain(tx, deployments[cid], deployments, names, user)
    for tx in senders.values():
        tx.wait()
    wrapped: dict[int, dict[int, str]] = {home: {} for home in sorted(deployments)}
    for cid, tx in senders.items():
        bridge = contract(tx.w3, "TokenBridge", deployments[cid].bridge)
        for home, dep in sorted(deployments.items()):
            if home != cid:
                address = bridge.functions.wrappedToken(home, dep.test_token).call()
                wrapped[home][cid] = to_checksum_address(address)
    return wrapped


# -- the whole devnet --------------------------------------------------------------------


@dataclass
class DevnetChain:
    name: str
    chain_id: int
    port: int
    rpc_url: str
    deployment: Deployment
    wrapped_tokens: dict[str, str] = field(default_factory=dict)
    node: LocalNode | None = field(default=None, repr=False, compare=False)
    kind: NodeKind = NodeKind.ANVIL
    finality: int | str = DEVNET_FINALITY

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "port": self.port,
            "gateway": self.deployment.gateway,
            "bridge": self.deployment.bridge,
            "test_token": self.deployment.test_token,
            "inbox": self.deployment.inbox,
            "owner": self.deployment.owner,
            "guardian": self.deployment.guardian,
            "wrapped_tokens": dict(self.wrapped_tokens),
            "finality": self.finality,
            "node": self.kind.value,
        }


@dataclass
class Devnet:
    """Running chains with the contracts deployed and wired."""

    chains: list[DevnetChain]
    state_dir: Path
    threshold: int = VALIDATOR_THRESHOLD
    validators: tuple[str, ...] = tuple(v.address for v in VALIDATORS)

    @property
    def json_path(self) -> Path:
        return self.state_dir / "devnet.json"

    def chain(self, name: str) -> DevnetChain:
        for chain in self.chains:
            if chain.name == name:
                return chain
        raise KeyError(f"no devnet chain named {name!r}")

    def __iter__(self) -> Iterator[DevnetChain]:
        return iter(self.chains)

    def to_json(self) -> dict[str, Any]:
        home, others = self.chains[0], self.chains[1:]
        return {
            "chains": [chain.to_json() for chain in self.chains],
            "asset": {
                "symbol": TOKEN_SYMBOL,
                "home_chain": home.name,
                "home_token": home.deployment.test_token,
                "deployments": {c.name: home.wrapped_tokens[c.name] for c in others},
            },
            "accounts": [
                {"role": account_role(i), "address": a.address, "private_key": a.private_key}
                for i, a in enumerate(DEV_ACCOUNTS)
            ],
            "validators": {"threshold": self.threshold, "addresses": list(self.validators)},
        }

    def write_json(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return self.json_path

    def stop(self) -> None:
        for chain in self.chains:
            if chain.node is not None:
                chain.node.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class IslandSpec:
    """One chain of a devnet: the node implementation that runs it, its block time (None: a
    block per transaction) and when its blocks count as final (a depth, "safe" or
    "finalized")."""

    kind: NodeKind = NodeKind.ANVIL
    block_time: float | None = 1.0
    finality: int | str = DEVNET_FINALITY
    name: str | None = None  # default: alpha, beta, gamma, chain-4, ...
    log_range_limit: int | None = None  # geth's --rpc.rangelimit


def _start_nodes(
    specs: Sequence[IslandSpec], base_port: int, state_dir: Path, chain_id_base: int
) -> list[LocalNode]:
    """Spawn every node, then wait for them (Hardhat alone takes seconds to load); all or
    none. Spawned from this thread, which outlives them (see launch_node)."""
    funded = [a.address for a in DEV_ACCOUNTS]
    nodes: list[LocalNode] = []
    try:
        for i, spec in enumerate(specs):
            options = NodeOptions(
                block_time=spec.block_time, funded=funded, log_range_limit=spec.log_range_limit
            )
            nodes.append(
                launch_node(spec.kind, base_port + i, chain_id_base + i, options, state_dir)
            )
        for node in nodes:
            node.wait_ready()
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def _deploy_all(nodes: Sequence[LocalNode]) -> list[Deployment]:
    validators = [v.address for v in VALIDATORS]

    def deploy(node: LocalNode) -> Deployment:
        return deploy_contracts(node.rpc_url, DEPLOYER.private_key, validators, VALIDATOR_THRESHOLD)

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(deploy, nodes))


def up(
    chains: int,
    base_port: int,
    state_dir: Path,
    *,
    block_time: float | None = 1.0,
    chain_id_base: int = 31337,
) -> Devnet:
    """Start `chains` anvil chains, deploy and wire the contracts, write devnet.json."""
    if chains < 1:
        raise ValueError("a devnet needs at least one chain")
    specs = [IslandSpec(NodeKind.ANVIL, block_time) for _ in range(chains)]
    return up_islands(specs, base_port, state_dir, chain_id_base=chain_id_base)


def up_islands(
    specs: Sequence[IslandSpec], base_port: int, state_dir: Path, *, chain_id_base: int = 31337
) -> Devnet:
    """A devnet of chains that differ: each spec's node implementation, block time and
    finality; the contracts deployed and wired as `up` does."""
    if not specs:
        raise ValueError("a devnet needs at least one chain")
    nodes = _start_nodes(specs, base_port, state_dir, chain_id_base)
    try:
        return _build(nodes, specs, state_dir)
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def _build(nodes: Sequence[LocalNode], specs: Sequence[IslandSpec], state_dir: Path) -> Devnet:
    deployments = _deploy_all(nodes)
    names = {
        node.chain_id: spec.name or chain_name(i)
        for i, (node, spec) in enumerate(zip(nodes, specs, strict=True))
    }
    by_id = {d.chain_id: d for d in deployments}
    rpc_urls = {node.chain_id: node.rpc_url for node in nodes}
    wrapped = wire(by_id, rpc_urls, DEPLOYER.private_key, names=names)
    devnet_chains = [
        DevnetChain(
            name=names[node.chain_id],
            chain_id=node.chain_id,
            port=node.port,
            rpc_url=node.rpc_url,
            deployment=by_id[node.chain_id],
            wrapped_tokens={names[cid]: addr for cid, addr in wrapped[node.chain_id].items()},
            node=node,
            kind=node.kind,
            finality=spec.finality,
        )
        for node, spec in zip(nodes, specs, strict=True)
    ]
    devnet = Devnet(chains=devnet_chains, state_dir=state_dir)
    devnet.write_json()
    return devnet


def attach(
    rpc_urls: Sequence[str],
    state_dir: Path,
    *,
    names: Sequence[str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The devnet's contracts on anvil chains someone else runs (its default dev accounts,
    e.g. in docker-compose): deploy, wire, write DIR/devnet.json, and return it. Run again on
    the same chains, it finds what it deployed and deploys nothing."""
    step = on_step or (lambda _what: None)
    chosen = list(names or [chain_name(i) for i in range(len(rpc_urls))])
    if len(chosen) != len(rpc_urls):
        raise DevnetError(f"{len(chosen)} names for {len(rpc_urls)} chains")
    found = _deployed_before(rpc_urls, state_dir)
    if found is not None:
        step("already deployed")
        return found
    validators = [v.address for v in VALIDATORS]
    deployments = [
        deploy_contracts(
            url,
            DEPLOYER.private_key,
            validators,
            VALIDATOR_THRESHOLD,
            on_step=_prefixed(step, name),
        )
        for name, url in zip(chosen, rpc_urls, strict=True)
    ]
    step("wire the bridges")
    name_of = {d.chain_id: n for d, n in zip(deployments, chosen, strict=True)}
    url_of = {d.chain_id: u for d, u in zip(deployments, rpc_urls, strict=True)}
    wrapped = wire(
        {d.chain_id: d for d in deployments}, url_of, DEPLOYER.private_key, names=name_of
    )
    chains = [
        DevnetChain(
            name=name_of[d.chain_id],
            chain_id=d.chain_id,
            port=urlsplit(url_of[d.chain_id]).port or 0,
            rpc_url=url_of[d.chain_id],
            deployment=d,
            wrapped_tokens={name_of[cid]: addr for cid, addr in wrapped[d.chain_id].items()},
        )
        for d in deployments
    ]
    devnet = Devnet(chains=chains, state_dir=state_dir)
    devnet.write_json()
    return devnet.to_json()


def _prefixed(step: Callable[[str], None], name: str) -> Callable[[str], None]:
    return lambda what: step(f"{name}: {what}")


def _deployed_before(rpc_urls: Sequence[str], state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "devnet.json"
    if not path.is_file():
        return None
    doc = dict(json.loads(path.read_text()))
    if [c["rpc_url"] for c in doc["chains"]] != list(rpc_urls):
        return None
    for chain in doc["chains"]:
        code = connect(chain["rpc_url"]).eth.get_code(to_checksum_address(chain["gateway"]))
        if not code:
            return None  # a new chain behind the same URL
    return doc
