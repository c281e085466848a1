"""Local EVM nodes of four independent implementations, for the devnet and the tests: anvil
(Foundry), Hardhat Network (Hardhat 2, EDR), Ganache 7 and go-ethereum's `geth --dev`.

Each runs in its own process group on 127.0.0.1, with the accounts of DEFAULT_MNEMONIC funded,
the chain id asked for, and either a block per transaction (`block_time=None`) or a block every
`block_time` seconds. `NodeControl` does what tests do to a chain (mine, reorg, set a balance)
with whatever each implementation offers for it. What differs between them, and how the adapter
copes with each difference, is written down in docs/adapters.md.

Nothing here starts a process or opens a connection at import time.
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
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
# go-ethereum, built once by `make setup` (go install from the Go module proxy) into .tools/.
GETH_VERSION = "v1.17.10"
HARDHAT_CONFIG = Path(__file__).resolve().parent / "hardhat.config.js"
# The key geth --dev imports as its unlocked developer account (go-ethereum's DeveloperKey);
# funded in our genesis, it sends the empty transactions that make geth mine on demand.
GETH_DEVELOPER = "0x71562b71999873DB5b286dF957af199Ec94617F7"
FUNDED_WEI = 10_000 * 10**18
# Forks geth --dev 1.17 switches on that no public chain runs yet. Bogota brings Amsterdam's
# state-gas metering (EIP-8037/8038), under which minting a bridged token costs more than the
# 200,000 gas a message gets by default: the devnet's geth runs the rules of today (Osaka).
_UNRELEASED_FORKS = ("amsterdam", "bogota")
PR_SET_PDEATHSIG = 1


class DevnetError(RuntimeError):
    """The devnet could not be started, deployed or wired; the message says why."""


class NodeKind(StrEnum):
    ANVIL = "anvil"
    HARDHAT = "hardhat"
    GANACHE = "ganache"
    GETH = "geth"


# Seconds a node may take to answer its first request (Hardhat loads a large JS bundle).
_STARTUP_TIMEOUT = {NodeKind.ANVIL: 20.0, NodeKind.HARDHAT: 90.0, NodeKind.GANACHE: 60.0}
_STARTUP_TIMEOUT[NodeKind.GETH] = 60.0


# -- finding the programs ---------------------------------------------------------------


def _executable(env_var: str, candidates: Sequence[Path], name: str, hint: str) -> Path:
    override = os.environ.get(env_var)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DevnetError(f"{env_var}={override} is not an executable file")
        return path
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise DevnetError(f"{name} not found: {hint}, or set {env_var} to its path")


def find_anvil() -> Path:
    """The anvil binary: $ISLANDS_ANVIL, else node_modules of the project, else PATH."""
    candidates = sorted(PROJECT_ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    hint = "run `make setup` (or `npm ci` in the project root) to install it under node_modules"
    return _executable("ISLANDS_ANVIL", candidates, "anvil", hint)


def find_geth() -> Path:
    """geth: $ISLANDS_GETH, else the one `make setup` built under .tools/, else PATH."""
    candidates = [PROJECT_ROOT / ".tools" / f"geth-{GETH_VERSION}" / "bin" / "geth"]
    hint = f"run `make setup` (it builds go-ethereum {GETH_VERSION} with `go install`)"
    return _executable("ISLANDS_GETH", candidates, "geth", hint)


def _find_npm_bin(name: str) -> Path:
    hint = "run `make setup` (or `npm ci` in the project root)"
    candidates = [PROJECT_ROOT / "node_modules" / ".bin" / name]
    return _executable(f"ISLANDS_{name.upper()}", candidates, name, hint)


# -- processes --------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do (anvil too): a TIME_WAIT left by the last run does not make it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def rpc_call(url: str, method: str, params: Sequence[Any], timeout: float = 10.0) -> Any:
    """One JSON-RPC call; DevnetError with the node's message when it answers an error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body.encode(), headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise DevnetError(f"{method} on {url} failed: {exc}") from None
    if "error" in answer:
        message = answer["error"].get("message", answer["error"])
        raise DevnetError(f"{method} on {url} failed: {message}")
    return answer.get("result")


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    if not url.startswith(("http://", "https://")):
        raise DevnetError(f"not an HTTP RPC URL: {url}")
    try:
        return int(rpc_call(url, "eth_chainId", [], timeout), 16)
    except (DevnetError, TypeError, ValueError, urllib.error.URLError):
        return None


class LocalNode:
    """One node process in its own process group; `stop()` leaves nothing behind (a data
    directory it made for itself included)."""

    def __init__(
        self,
        kind: NodeKind,
        process: subprocess.Popen[bytes],
        port: int,
        chain_id: int,
        log_path: Path | None,
        log_file: IO[bytes] | None,
        scratch: Path | None = None,
    ) -> None:
        self.kind = kind
        self.process = process
        self.port = port
        self.chain_id = chain_id
        self.rpc_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log_file = log_file
        self._scratch = scratch

    def __repr__(self) -> str:
        return (
            f"LocalNode(kind={self.kind.value!r}, rpc_url={self.rpc_url!r}, "
            f"chain_id={self.chain_id}, pid={self.pid})"
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
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
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the node answers with its chain id (and is ready for use); on failure
        the node is stopped."""
        try:
            _wait_answering(self, timeout or _STARTUP_TIMEOUT[self.kind])
            if self.kind is NodeKind.HARDHAT:  # its node logs every request; the relay polls
                rpc_call(self.rpc_url, "hardhat_setLoggingEnabled", [False])
            if self.kind is NodeKind.GETH:
                _wait_indexed(self)
        except BaseException:
            self.stop()
            raise
        log.info(
            "%s chain %s listening on %s (pid %s)", self.kind, self.chain_id, self.rpc_url, self.pid
        )

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


# -- commands, one per implementation ---------------------------------------------------


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


def anvil_env(home: Path) -> dict[str, str]:
    """anvil keeps the states of blocks past its last 500 in ~/.foundry/anvil/tmp (3.4 GB
    after a 5,000-transfer benchmark) and leaves them there when it stops: 77 GB of them
    filled this project's test machine. Its home is a directory of its own, removed when it
    stops."""
    return {"HOME": str(home)}


def hardhat_command(port: int) -> list[str]:
    """Hardhat 2's node; chain id and mining come from the environment (hardhat_env), as
    hardhat reads its network settings only from a config file inside the project."""
    hardhat = _find_npm_bin("hardhat")
    command = [str(hardhat), "--config", str(HARDHAT_CONFIG), "node"]
    return [*command, "--hostname", "127.0.0.1", "--port", str(port)]


def hardhat_env(chain_id: int, block_time: float | None, workdir: Path) -> dict[str, str]:
    interval = 0 if block_time is None else max(1, round(block_time * 1000))
    return {
        "ISLANDS_HARDHAT_CHAIN_ID": str(chain_id),
        "ISLANDS_HARDHAT_BLOCK_TIME_MS": str(interval),
        "ISLANDS_HARDHAT_DIR": str(workdir),
        "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
    }


def ganache_command(port: int, chain_id: int, block_time: float | None) -> list[str]:
    ganache = _find_npm_bin("ganache")
    command = [str(ganache), "--server.host", "127.0.0.1", "--server.port", str(port)]
    command += ["--chain.chainId", str(chain_id), "--wallet.mnemonic", DEFAULT_MNEMONIC]
    command += ["--wallet.totalAccounts", "10", "--wallet.defaultBalance", "10000"]
    command += ["--logging.quiet"]
    if block_time is not None:
        command += ["--miner.blockTime", f"{block_time:g}"]
    return command


# geth sizes its database's write-ahead log by --cache (1 GB by default), and preallocates it:
# a dev chain of a few MB took 1.2 GB of disk, and a full disk stopped the test suite.
_GETH_SMALL_CACHE = ("--cache", "32")


def geth_command(
    geth: Path, datadir: Path, port: int, block_time: float | None, log_range_limit: int | None
) -> list[str]:
    if block_time is not None and (block_time < 1 or block_time != int(block_time)):
        raise DevnetError(f"geth --dev mines in whole seconds, not every {block_time:g}s")
    period = 0 if block_time is None else int(block_time)
    command = [str(geth), "--dev", "--datadir", str(datadir), "--dev.period", str(period)]
    command += ["--dev.gaslimit", "30000000", "--http", "--http.addr", "127.0.0.1"]
    command += ["--http.port", str(port), "--http.api", "eth,net,web3,debug,txpool,dev"]
    # no engine API, peer-to-peer or IPC: a dev chain that reaches nothing, on no fixed port
    command += ["--authrpc.port", "0", "--port", "0", "--nodiscover", "--maxpeers", "0"]
    command += ["--ipcdisable", "--verbosity", "2"]
    # A dev chain's data is a few MB: geth's own floor (its GC cache, about 2 GB of free disk)
    # shut it down on a test machine with 1.9 GB free. It still stops below 256 MB.
    command += ["--datadir.minfreedisk", "256", *_GETH_SMALL_CACHE]
    if log_range_limit is not None:
        command += ["--rpc.rangelimit", str(log_range_limit)]
    return command


def init_geth(geth: Path, datadir: Path, chain_id: int, funded: Sequence[str]) -> None:
    """A fresh data directory whose genesis is geth --dev's own, with our chain id and the
    accounts funded (geth --dev keeps a chain it finds in its data directory)."""
    shutil.rmtree(datadir, ignore_errors=True)
    datadir.mkdir(parents=True)
    dumped = subprocess.run(
        [str(geth), "--dev", "dumpgenesis"], capture_output=True, timeout=60, check=False
    )
    if dumped.returncode != 0:
        raise DevnetError(f"geth dumpgenesis failed: {dumped.stderr.decode(errors='replace')}")
    genesis = json.loads(dumped.stdout)
    genesis["config"]["chainId"] = chain_id
    for fork in _UNRELEASED_FORKS:
        genesis["config"].pop(f"{fork}Time", None)
    for address in [*funded, GETH_DEVELOPER]:
        genesis["alloc"][address.lower().removeprefix("0x")] = {"balance": hex(FUNDED_WEI)}
    path = datadir / "genesis.json"
    path.write_text(json.dumps(genesis), encoding="utf-8")
    init = subprocess.run(
        [str(geth), "--datadir", str(datadir), *_GETH_SMALL_CACHE, "init", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if init.returncode != 0:
        raise DevnetError(f"geth init failed: {init.stderr.decode(errors='replace')[-2000:]}")


# -- starting one ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NodeOptions:
    """How a node runs (see start_node)."""

    block_time: float | None = 1.0
    funded: Sequence[str] = ()
    slots_in_epoch: int | None = None
    log_range_limit: int | None = None


def start_node(
    kind: NodeKind,
    port: int,
    chain_id: int,
    *,
    block_time: float | None = 1.0,
    state_dir: Path | None = None,
    funded: Sequence[str] = (),
    slots_in_epoch: int | None = None,
    log_range_limit: int | None = None,
    startup_timeout: float | None = None,
) -> LocalNode:
    """Start a node of `kind` on 127.0.0.1:`port` and wait until its RPC answers.

    `block_time` None means a block per transaction; anvil, Hardhat and Ganache take fractional
    seconds, geth whole ones. With `state_dir`, output goes to `state_dir/<kind>-<chain id>.log`.
    The accounts of DEFAULT_MNEMONIC are funded on every kind; on geth, whose --dev genesis
    funds only its developer account, `funded` names them. `slots_in_epoch` is anvil's
    (its `safe` is head - slots, `finalized` head - 2 * slots); `log_range_limit` is geth's
    `--rpc.rangelimit` (the others have no such limit).
    """
    options = NodeOptions(
        block_time=block_time,
        funded=funded,
        slots_in_epoch=slots_in_epoch,
        log_range_limit=log_range_limit,
    )
    node = launch_node(kind, port, chain_id, options, state_dir)
    node.wait_ready(startup_timeout)
    return node


def launch_node(
    kind: NodeKind, port: int, chain_id: int, options: NodeOptions, state_dir: Path | None
) -> LocalNode:
    """Spawn the node without waiting for it. Call from the thread that will outlive it: the
    node gets SIGTERM when the thread that spawned it ends (so a killed hub leaves none)."""
    if not port_free(port):
        raise DevnetError(f"cannot start {kind}: port {port} on 127.0.0.1 is already in use")
    scratch = None
    workdir = state_dir / f"{kind}-{chain_id}" if state_dir is not None else None
    if workdir is None:
        workdir = scratch = Path(tempfile.mkdtemp(prefix=f"islands-{kind}-"))
    command, env = _command(kind, port, chain_id, workdir, options)
    if kind is NodeKind.ANVIL:
        scratch = workdir  # only anvil's own home: nothing in it outlives the node
    log_path, log_file = None, None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        log_path = state_dir / f"{kind}-{chain_id}.log"
        log_file = log_path.open("wb")
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, no locks taken
    )
    return LocalNode(kind, process, port, chain_id, log_path, log_file, scratch)


def _command(
    kind: NodeKind, port: int, chain_id: int, workdir: Path, options: NodeOptions
) -> tuple[list[str], dict[str, str]]:
    if options.slots_in_epoch is not None and kind is not NodeKind.ANVIL:
        raise DevnetError(f"slots_in_epoch is anvil's; {kind} has no such setting")
    if options.log_range_limit is not None and kind is not NodeKind.GETH:
        raise DevnetError(f"{kind} has no limit on eth_getLogs ranges to set")
    block_time = options.block_time
    if kind is NodeKind.ANVIL:
        anvil = find_anvil()
        workdir.mkdir(parents=True, exist_ok=True)
        command = anvil_command(anvil, port, chain_id, block_time, options.slots_in_epoch)
        return command, anvil_env(workdir)
    if kind is NodeKind.HARDHAT:
        workdir.mkdir(parents=True, exist_ok=True)
        return hardhat_command(port), hardhat_env(chain_id, block_time, workdir)
    if kind is NodeKind.GANACHE:
        return ganache_command(port, chain_id, block_time), {}
    geth = find_geth()
    init_geth(geth, workdir, chain_id, options.funded)
    return geth_command(geth, workdir, port, block_time, options.log_range_limit), {}


def start_anvil(
    port: int,
    chain_id: int,
    *,
    block_time: float | None = 1.0,
    state_dir: Path | None = None,
    slots_in_epoch: int | None = None,
    startup_timeout: float = 20.0,
) -> LocalNode:
    """An anvil node (see start_node); anvil answers the `safe` tag with head -
    slots_in_epoch and `finalized` with head - 2 * slots_in_epoch (genesis until then); the
    default epoch is 32 slots."""
    return start_node(
        NodeKind.ANVIL,
        port,
        chain_id,
        block_time=block_time,
        state_dir=state_dir,
        slots_in_epoch=slots_in_epoch,
        startup_timeout=startup_timeout,
    )


def _wait_answering(node: LocalNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.running():
            tail = node.log_tail()
            raise DevnetError(
                f"{node.kind} on port {node.port} exited with code {node.process.returncode}"
                + (f":\n{tail}" if tail else "")
            )
        reported = rpc_chain_id(node.rpc_url, timeout=0.5)
        if reported is not None:
            if reported != node.chain_id:
                raise DevnetError(
                    f"{node.rpc_url} reports chain id {reported}, not {node.chain_id}: "
                    "another node answers on that port"
                )
            return
        time.sleep(0.1)
    raise DevnetError(f"{node.kind} on port {node.port} did not answer within {timeout:g}s")


def _wait_indexed(node: LocalNode, timeout: float = 30.0) -> None:
    """A new geth answers every receipt query with "transaction indexing is in progress"
    until its indexer has seen a block: mine one and wait for a plain "not found"."""
    NodeControl(node.kind, node.rpc_url).mine(1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            rpc_call(node.rpc_url, "eth_getTransactionReceipt", ["0x" + "00" * 32])
        except DevnetError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return


# -- acting on a running node ------------------------------------------------------------


class NodeControl:
    """What tests and the devnet do to a chain, with each implementation's own methods:
    anvil_*, hardhat_*, Ganache's evm_*, and on geth (which has none of them) its developer
    account's transactions and debug_setHead."""

    def __init__(self, kind: NodeKind, rpc_url: str) -> None:
        self.kind = kind
        self.rpc_url = rpc_url

    def _rpc(self, method: str, *params: Any) -> Any:
        return rpc_call(self.rpc_url, method, params, timeout=30)

    def head(self) -> int:
        return int(self._rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` blocks now."""
        if blocks <= 0:
            return
        if self.kind is NodeKind.ANVIL:
            self._rpc("anvil_mine", hex(blocks))
        elif self.kind is NodeKind.HARDHAT:
            self._rpc("hardhat_mine", hex(blocks))
        elif self.kind is NodeKind.GANACHE:
            self._rpc("evm_mine", {"blocks": blocks})
        else:
            for _ in range(blocks):
                self._geth_block()

    def _geth_block(self) -> None:
        """geth --dev (period 0) seals a block when a transaction arrives: send an empty one
        from its developer account and wait for the head to move."""
        before = self.head()
        self._rpc("eth_sendTransaction", {"from": GETH_DEVELOPER, "to": GETH_DEVELOPER})
        deadline = time.monotonic() + 30
        while self.head() <= before:
            if time.monotonic() > deadline:
                raise DevnetError(f"geth at {self.rpc_url} mined no block within 30s")
            time.sleep(0.02)

    def checkpoint(self) -> str:
        """A point to reorg back to (`reorg_to`)."""
        if self.kind in (NodeKind.HARDHAT, NodeKind.GANACHE):
            return str(self._rpc("evm_snapshot"))
        return str(self.head())

    def reorg_to(self, checkpoint: str, blocks: int) -> None:
        """Replace every block after `checkpoint` by a new history of `blocks` blocks. The
        transactions of the old blocks are dropped, except on geth, whose pool takes them
        back and may mine them again in the new blocks (as a real reorg may)."""
        if self.kind is NodeKind.ANVIL:
            depth = self.head() - int(checkpoint)
            self._rpc("anvil_reorg", depth, [])
            self.mine(max(0, blocks - depth))
            return
        if self.kind in (NodeKind.HARDHAT, NodeKind.GANACHE):
            if self._rpc("evm_revert", checkpoint) is not True:
                raise DevnetError(f"{self.kind} at {self.rpc_url} refused evm_revert")
        else:
            self._rpc("debug_setHead", hex(int(checkpoint)))
        self.mine(blocks)

    def set_balance(self, address: str, wei: int) -> None:
        methods = {
            NodeKind.ANVIL: "anvil_setBalance",
            NodeKind.HARDHAT: "hardhat_setBalance",
            NodeKind.GANACHE: "evm_setAccountBalance",
        }
        method = methods.get(self.kind)
        if method is None:
            raise DevnetError(f"{self.kind} cannot set an account's balance")
        self._rpc(method, address, hex(wei))
