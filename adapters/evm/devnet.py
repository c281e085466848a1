"""The local devnet: anvil chains with the Islands contracts deployed and wired together.

Usable from the CLI and from tests; nothing here starts a process or opens a connection at
import time.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, cast
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

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_NAMES = ("alpha", "beta", "gamma")
TOKEN_NAME, TOKEN_SYMBOL, TOKEN_DECIMALS = "Island Test Token", "ITT", 18
TOKEN_SUPPLY = 1_000_000 * 10**18
USER_MINT = 1_000 * 10**18
DEVNET_FINALITY = 2
VALIDATOR_THRESHOLD = 2
RECEIPT_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1


class DevnetError(RuntimeError):
    """The devnet could not be started, deployed or wired; the message says why."""


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


# -- anvil -------------------------------------------------------------------------------


def find_anvil() -> Path:
    """The anvil binary: $ISLANDS_ANVIL, else node_modules of the project, else PATH."""
    override = os.environ.get("ISLANDS_ANVIL")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DevnetError(f"ISLANDS_ANVIL={override} is not an executable file")
        return path
    candidates = sorted(PROJECT_ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise DevnetError(
        "anvil not found: run `make setup` (or `npm ci` in the project root) to install it "
        "under node_modules/@foundry-rs, or set ISLANDS_ANVIL to its path"
    )


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do (anvil too): a TIME_WAIT left by the last run does not make it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    if not url.startswith(("http://", "https://")):
        raise DevnetError(f"not an HTTP RPC URL: {url}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body.encode(), headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(json.loads(response.read())["result"], 16)
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


class AnvilNode:
    """One anvil process in its own process group; `stop()` leaves nothing behind."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: int,
        chain_id: int,
        log_path: Path | None,
        log_file: IO[bytes] | None,
    ) -> None:
        self.process = process
        self.port = port
        self.chain_id = chain_id
        self.rpc_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log_file = log_file

    def __repr__(self) -> str:
        return f"AnvilNode(rpc_url={self.rpc_url!r}, chain_id={self.chain_id}, pid={self.pid})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process group, then kill it if it lingers."""
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM when the parent dies, so a hub killed
    with SIGKILL still leaves no chain running (its own process group keeps Ctrl-C away)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def anvil_command(
    anvil: Path,
    port: int,
    chain_id: int,
    block_time: float | None,
    slots_in_epoch: int | None = None,
) -> list[str]:
    command = [str(anvil), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--chain-id", str(chain_id), "--mnemonic", DEFAULT_MNEMONIC]
    if block_time is not None:
        command += ["--block-time", f"{block_time:g}"]
    if slots_in_epoch is not None:
        command += ["--slots-in-an-epoch", str(slots_in_epoch)]
    return command


def start_anvil(
    port: int,
    chain_id: int,
    *,
    block_time: float | None = 1.0,
    state_dir: Path | None = None,
    slots_in_epoch: int | None = None,
    startup_timeout: float = 20.0,
) -> AnvilNode:
    """Start anvil on 127.0.0.1:`port` and wait until its RPC answers.

    `block_time` None means automine (a block per transaction); fractional seconds work.
    With `state_dir`, anvil's output goes to `state_dir/anvil-<chain_id>.log`.
    anvil answers the `safe` tag with head - slots_in_epoch and `finalized` with
    head - 2 * slots_in_epoch (genesis until then); the default epoch is 32 slots.
    """
    if not port_free(port):
        raise DevnetError(f"cannot start anvil: port {port} on 127.0.0.1 is already in use")
    command = anvil_command(find_anvil(), port, chain_id, block_time, slots_in_epoch)
    log_path, log_file = None, None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        log_path = state_dir / f"anvil-{chain_id}.log"
        log_file = log_path.open("wb")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, no locks taken
    )
    node = AnvilNode(process, port, chain_id, log_path, log_file)
    try:
        _wait_ready(node, startup_timeout)
    except BaseException:
        node.stop()
        raise
    log.info("anvil chain %s listening on %s (pid %s)", chain_id, node.rpc_url, node.pid)
    return node


def _wait_ready(node: AnvilNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.running():
            tail = node.log_tail()
            raise DevnetError(
                f"anvil on port {node.port} exited with code {node.process.returncode}"
                + (f":\n{tail}" if tail else "")
            )
        reported = _rpc_chain_id(node.rpc_url, timeout=0.5)
        if reported is not None:
            if reported != node.chain_id:
                raise DevnetError(
                    f"{node.rpc_url} reports chain id {reported}, not {node.chain_id}: "
                    "another node answers on that port"
                )
            return
        time.sleep(0.05)
    raise DevnetError(f"anvil on port {node.port} did not answer within {timeout:g}s")


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
    if _rpc_chain_id(rpc_url, timeout=timeout) is None:
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
    node: AnvilNode | None = field(default=None, repr=False, compare=False)

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
            "finality": DEVNET_FINALITY,
        }


@dataclass
class Devnet:
    """Running anvil chains with the contracts deployed and wired."""

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


def _start_nodes(
    chains: int, base_port: int, state_dir: Path, block_time: float | None, chain_id_base: int
) -> list[AnvilNode]:
    nodes: list[AnvilNode] = []
    try:
        for i in range(chains):
            node = start_anvil(
                base_port + i, chain_id_base + i, block_time=block_time, state_dir=state_dir
            )
            nodes.append(node)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def _deploy_all(nodes: Sequence[AnvilNode]) -> list[Deployment]:
    validators = [v.address for v in VALIDATORS]

    def deploy(node: AnvilNode) -> Deployment:
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
    nodes = _start_nodes(chains, base_port, state_dir, block_time, chain_id_base)
    try:
        return _build(nodes, state_dir)
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def _build(nodes: Sequence[AnvilNode], state_dir: Path) -> Devnet:
    deployments = _deploy_all(nodes)
    names = [chain_name(i) for i in range(len(nodes))]
    urls = [node.rpc_url for node in nodes]
    return _wired(names, urls, deployments, state_dir, list(nodes))


def _wired(
    names: Sequence[str],
    rpc_urls: Sequence[str],
    deployments: Sequence[Deployment],
    state_dir: Path,
    nodes: Sequence[AnvilNode | None] | None = None,
) -> Devnet:
    """Wire deployed chains together and write devnet.json."""
    name_of = {d.chain_id: n for d, n in zip(deployments, names, strict=True)}
    url_of = {d.chain_id: u for d, u in zip(deployments, rpc_urls, strict=True)}
    by_id = {d.chain_id: d for d in deployments}
    wrapped = wire(by_id, url_of, DEPLOYER.private_key, names=name_of)
    nodes = list(nodes) if nodes is not None else [None] * len(deployments)
    devnet_chains = [
        DevnetChain(
            name=name_of[d.chain_id],
            chain_id=d.chain_id,
            port=urlsplit(url_of[d.chain_id]).port or 0,
            rpc_url=url_of[d.chain_id],
            deployment=d,
            wrapped_tokens={name_of[cid]: addr for cid, addr in wrapped[d.chain_id].items()},
            node=node,
        )
        for d, node in zip(deployments, nodes, strict=True)
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
    """The devnet's contracts on chains someone else runs (anvil with its default dev
    accounts, e.g. in docker-compose): deploy, wire, write DIR/devnet.json, and return it.
    Run again on the same chains, it finds what it deployed and deploys nothing."""
    step = on_step or (lambda _what: None)
    chosen = list(names or [chain_name(i) for i in range(len(rpc_urls))])
    if len(chosen) != len(rpc_urls):
        raise DevnetError(f"{len(chosen)} names for {len(rpc_urls)} chains")
    found = _deployed_before(rpc_urls, state_dir)
    if found is not None:
        step("already deployed")
        return found
    validators = [v.address for v in VALIDATORS]
    deployments = []
    for name, url in zip(chosen, rpc_urls, strict=True):
        deployments.append(
            deploy_contracts(
                url,
                DEPLOYER.private_key,
                validators,
                VALIDATOR_THRESHOLD,
                on_step=_prefixed(step, name),
            )
        )
    step("wire the bridges")
    return _wired(chosen, rpc_urls, deployments, state_dir).to_json()


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
