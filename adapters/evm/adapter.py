"""The EVM chain adapter: web3.py over several JSON-RPC endpoints, with failover and quorum.

Each call tries the endpoints in order, starting from the last one that answered; an
endpoint that fails at the transport level is put last for a short cool-down. Reads that
decide safety (`finalized_block`, `block_hash`, `messages`) can require `quorum` endpoints
to agree. Web3 instances are made lazily, one per URL, on first use.

Delivery signs locally (EIP-1559, eth_account) and sends a raw transaction to one endpoint:
a node's refusal is final and classified (nonce too low, underpriced), only transport errors
fail over, and a transaction the node already has is not an error.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Literal, TypeVar, cast
from urllib.parse import quote, unquote

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.datastructures import SignedTransaction
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_account.types import TransactionDictType
from eth_typing import ABI, ChecksumAddress
from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from rlp import decode as rlp_decode  # type: ignore[import-untyped]
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    BadFunctionCallOutput,
    BlockNotFound,
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import BlockIdentifier, FilterParams, LogReceipt, RPCEndpoint, TxParams

from adapters.base import (
    MESSAGE_ABI_TYPE,
    AdapterError,
    AddressGuard,
    BlockRef,
    DeliveryOutcome,
    DeliveryStatus,
    EndpointReport,
    EndpointUnavailableError,
    FeeQuote,
    FinalityKind,
    FinalityPolicy,
    GatewayConfig,
    Message,
    NonceTooLowError,
    ObservedMessage,
    QuorumError,
    RateLimit,
    RateLimitState,
    Receipt,
    ReturnedTransfer,
    SignedMessage,
    SignedTx,
    SimulationError,
    UnderpricedError,
    WrappedTokenSpec,
    report_rpc,
)
from adapters.evm.contracts import abi, decode_revert
from adapters.http import TransportRefusedError, rpc_session

T = TypeVar("T")

DEFAULT_COOLDOWN = 5.0
# An endpoint whose head is this many blocks behind the highest head seen is failed over:
# healthy endpoints of one chain differ by a block or two, a stalled node by many.
DEFAULT_MAX_LAG = 16
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei, when the node has no eth_maxPriorityFeePerGas
# The gateway forwards each message's gas limit exactly (or reverts InsufficientGas()), so a
# delivery's gas hardly moves between simulation and inclusion; the margin covers what does
# (storage a recipient finds warm or cold, a validator set changed in between).
GAS_MARGIN_PERCENT = 20
GAS_MARGIN_FIXED = 50_000
TX_GAS_CAP = 2**24  # EIP-7825 (Osaka): no transaction may use more
# Batches this large or larger teach and use a gas-per-message guess: in a small one the
# transaction's fixed cost would make the figure too high (a gas limit too high for a block).
GUESS_FROM_BATCHES_OF = 10
# What geth, anvil, erigon and others answer for a transaction they already hold.
_ALREADY_KNOWN = ("already known", "already imported", "known transaction")
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [^'\")]+")
_MAX_ERROR_CHARS = 300
_URL_DELIMITERS = re.compile(r"[/:@?&=#]+")

ERC20_ABI: ABI = cast(
    ABI,
    [
        {
            "type": "function",
            "name": "balanceOf",
            "stateMutability": "view",
            "inputs": [{"name": "account", "type": "address"}],
            "outputs": [{"name": "", "type": "uint256"}],
        },
        {
            "type": "function",
            "name": "totalSupply",
            "stateMutability": "view",
            "inputs": [],
            "outputs": [{"name": "", "type": "uint256"}],
        },
        {
            "type": "function",
            "name": "decimals",
            "stateMutability": "view",
            "inputs": [],
            "outputs": [{"name": "", "type": "uint8"}],
        },
    ],
)

_DELIVERY_EVENTS = {
    "MessageDelivered": DeliveryStatus.DELIVERED,
    "MessageFailed": DeliveryStatus.FAILED,
    "MessageSkipped": DeliveryStatus.SKIPPED,
    "MessageConsumed": DeliveryStatus.CONSUMED,
}


class _BadAnswerError(ValueError):
    """An endpoint answered something it was not asked: fail over, as for a transport error."""


class _EndpointFailureError(Exception):
    """One endpoint could not answer one call (transport error or a node error)."""


class _Provider(HTTPProvider):
    """web3's HTTP provider, named by the form of its URL that may be shown."""

    def __init__(self, url: str, shown: str, timeout: float, guard: AddressGuard | None) -> None:
        super().__init__(
            url,
            request_kwargs={"timeout": timeout},
            exception_retry_configuration=None,
            session=rpc_session(guard),
        )
        self.shown = shown

    def __str__(self) -> str:
        return f"RPC connection {self.shown}"


class _EndpointBehindError(Exception):
    """An endpoint lags behind the chain: its answer would be stale, so another answers."""


@dataclass
class _Endpoint:
    """One RPC URL: `url` is what is connected to (it may carry a key), `shown` is what any
    message may name; `hide` takes out of a text every part of `url` that `shown` hides."""

    url: str
    timeout: float
    shown: str = ""
    guard: AddressGuard | None = None
    cool_until: float = 0.0
    _web3: Web3 | None = None
    _hidden: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self.shown = self.shown or self.url
        self._hidden = _hidden_parts(self.url, self.shown)

    def web3(self) -> Web3:
        if self._web3 is None:
            w3 = Web3(_Provider(self.url, self.shown, self.timeout, self.guard))
            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
            self._web3 = w3
        return self._web3

    def hide(self, text: str) -> str:
        text = text.replace(self.url, self.shown)
        for part in self._hidden:
            text = text.replace(part, "***")
        return text

    def describe(self, exc: BaseException) -> str:
        return _describe(exc, self.hide)


def _hidden_parts(url: str, shown: str) -> tuple[str, ...]:
    """The pieces of `url` (user, password, key, query value...) absent from `shown`, as
    they may appear in an error: raw, percent-encoded or decoded; longest first."""
    if url == shown:
        return ()
    parts = set(_URL_DELIMITERS.split(url)) - set(_URL_DELIMITERS.split(shown))
    parts = {p for p in parts if len(p) >= 3}
    variants = parts | {quote(p, safe="") for p in parts} | {unquote(p) for p in parts}
    return tuple(sorted(variants, key=len, reverse=True))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _describe(exc: BaseException, hide: Callable[[str], str]) -> str:
    """One line naming the error, never a traceback; `hide` runs before the line is cut, so
    no fragment of a secret survives the cut."""
    name = type(exc).__name__
    if "Timeout" in name:
        return f"{name}: timed out"
    text = hide(" ".join(str(exc).split())) or "no detail"
    errno = _ERRNO_RE.search(text)
    if "ConnectionError" in name and errno:
        return f"connection failed: {errno.group(0)}"
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 3] + "..."
    return f"{name}: {text}"


def _summary(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def revert_reason(data: bytes) -> str:
    """A readable reason from a recipient's revert data."""
    return decode_revert(data)


def _block_ref(w3: Web3, ident: BlockIdentifier) -> BlockRef:
    block = w3.eth.get_block(ident)
    return BlockRef(number=int(block["number"]), hash=_hex(block["hash"]))


def _finalized_ref(
    w3: Web3, policy: FinalityPolicy, fresh: Callable[[BlockRef], BlockRef] = lambda r: r
) -> BlockRef:
    if policy.kind is not FinalityKind.DEPTH:
        return _block_ref(w3, cast(BlockIdentifier, policy.kind.value))
    head = fresh(_block_ref(w3, "latest"))
    number = max(0, head.number - policy.depth)
    return head if number == head.number else _block_ref(w3, number)


def _block_hash(w3: Web3, number: int) -> str | None:
    try:
        return _block_ref(w3, number).hash
    except BlockNotFound:
        return None


def _receipt(w3: Web3, tx_hash: str) -> Receipt | None:
    """eth_getTransactionReceipt read raw (web3's formatting of every log of a batch's receipt
    cost more than the request); None while the node knows no mined transaction."""
    response = w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash])
    if "error" in response:
        raise Web3RPCError(str(response["error"]), rpc_response=response)
    r = response.get("result")
    if r is None or (isinstance(r, dict) and r.get("blockNumber") is None):
        return None  # unknown, or pending (some nodes answer a receipt without a block)
    try:
        return Receipt(
            tx_hash=_hex(HexBytes(r["transactionHash"])),
            block_number=int(r["blockNumber"], 16),
            block_hash=_hex(HexBytes(r["blockHash"])),
            success=int(r.get("status") or "0x0", 16) == 1,
            logs_count=len(r["logs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _BadAnswerError(
            f"a malformed receipt in the node's answer ({type(exc).__name__})"
        ) from None


def _gateway(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=cast(ABI, abi("Gateway")))


def _bridge(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=cast(ABI, abi("TokenBridge")))


def _read_returns(w3: Web3, bridge: str, from_block: int, to_block: int) -> list[ReturnedTransfer]:
    event = _bridge(w3, bridge).events.TransferReturned()
    found = []
    for log in _logs(w3, bridge, [event.topic], from_block, to_block):
        args = event.process_log(log)["args"]
        found.append(
            ReturnedTransfer(
                original_id=bytes(args["originalId"]),
                return_id=bytes(args["returnId"]),
                tx_hash=_hex(log["transactionHash"]),
            )
        )
    return found


# How nodes and providers refuse an eth_getLogs range as too large: geth's --rpc.rangelimit
# ("exceed maximum block range 100"), Besu, Erigon, and hosted providers' limits on blocks or
# results. A stated number of blocks is taken as the span to read; otherwise halves are read.
_RANGE_REFUSED = re.compile(
    r"exceed(?:s|ed)? (?:the )?max(?:imum)? (?:block )?range|block range (?:is )?too "
    r"(?:large|wide|big)|more than [\d,]+ results|limited to (?:a )?[\d,]+[ -]?(?:block )?range|"
    r"range (?:limit )?exceeded|response size exceeded",
    re.IGNORECASE,
)
_RANGE_BLOCKS = re.compile(r"block range(?: of| limit)? ([\d,]+)|([\d,]+)[ -]block range")


def _allowed_span(exc: Web3RPCError) -> int | None:
    """0 when the node refused a log range as too large without saying how many blocks it
    allows, that many when it says, None when the error is about something else."""
    message = _rpc_message(exc)
    if not _RANGE_REFUSED.search(message):
        return None
    stated = _RANGE_BLOCKS.search(message)
    if stated is None:
        return 0
    return int((stated.group(1) or stated.group(2)).replace(",", ""))


# Checksumming is a keccak per address, and a log names the same few addresses again and again
# (the gateway, a bridge, a busy sender): it was a seventh of a validator's time.
_checksummed = lru_cache(maxsize=16_384)(to_checksum_address)


def _get_logs(w3: Web3, params: FilterParams, from_block: int, to_block: int) -> list[LogReceipt]:
    """eth_getLogs over [from_block, to_block], read in parts when the node refuses the range
    as too large: spans of the size it states, else halves, down to single blocks."""
    try:
        return _raw_logs(w3, {**params, "fromBlock": hex(from_block), "toBlock": hex(to_block)})
    except Web3RPCError as exc:
        span = _allowed_span(exc)
        if span is None or from_block >= to_block:
            raise
    blocks = to_block - from_block + 1
    if not 0 < span < blocks:
        span = (blocks + 1) // 2
    logs: list[LogReceipt] = []
    for start in range(from_block, to_block + 1, span):
        logs += _get_logs(w3, params, start, min(to_block, start + span - 1))
    return logs


def _raw_logs(w3: Web3, params: dict[str, Any]) -> list[LogReceipt]:
    """eth_getLogs without web3's result formatting (a recursive walk of every log that cost
    more than decoding them); the fields the hub reads are converted here."""
    response = w3.provider.make_request(RPCEndpoint("eth_getLogs"), [params])
    if "error" in response:
        raise Web3RPCError(str(response["error"]), rpc_response=response)
    result = response.get("result")
    if not isinstance(result, list):
        raise _BadAnswerError("eth_getLogs answered something else than a list of logs")
    return [_log_of(item) for item in result]


def _log_of(raw: Any) -> LogReceipt:
    try:
        return cast(
            LogReceipt,
            {
                "address": str(raw["address"]),
                "topics": [HexBytes(t) for t in raw["topics"]],
                "data": HexBytes(raw["data"]),
                "blockNumber": int(raw["blockNumber"], 16),
                "blockHash": HexBytes(raw["blockHash"]),
                "transactionHash": HexBytes(raw["transactionHash"]),
                "transactionIndex": int(raw["transactionIndex"], 16),
                "logIndex": int(raw["logIndex"], 16),
                "removed": bool(raw.get("removed", False)),
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _BadAnswerError(
            f"a malformed log in the node's answer ({type(exc).__name__})"
        ) from None


def _logs(
    w3: Web3, address: str, topics: list[str], from_block: int, to_block: int
) -> list[LogReceipt]:
    params: FilterParams = {"address": to_checksum_address(address), "topics": [topics]}
    wanted = {HexBytes(t) for t in topics}
    found = _get_logs(w3, params, from_block, to_block)
    logs = [log for log in found if not log.get("removed", False)]
    strays = [
        log
        for log in logs
        if _checksummed(log["address"]) != params["address"]
        or not log["topics"]
        or HexBytes(log["topics"][0]) not in wanted
    ]
    if strays:  # a node that answers what was not asked is not to be believed on the rest
        raise _BadAnswerError(f"the node returned {len(strays)} log(s) outside the filter asked")
    return logs


_SENT_DATA = ["uint64", "address", "uint64", "bytes"]  # MessageSent's unindexed fields


def _observed(chain_id: int, log: LogReceipt) -> ObservedMessage:
    """The message of a MessageSent log (decoded here: web3's generic event processing
    was most of a scan's time); its source gateway is the log's emitter, and the id the
    gateway logged must be the one its fields give."""
    topics, where = log["topics"], f"{_hex(log['transactionHash'])} log {log['logIndex']}"
    if len(topics) != 4:
        raise AdapterError(f"MessageSent at {where} has {len(topics)} topics, not 4")
    nonce, recipient, gas_limit, payload = abi_decode(_SENT_DATA, bytes(log["data"]))
    message = Message(
        src_chain_id=chain_id,
        src_gateway=_checksummed(log["address"]),
        dst_chain_id=int.from_bytes(bytes(topics[2]), "big"),
        nonce=int(nonce),
        sender=_checksummed(bytes(topics[3])[-20:]),
        recipient=_checksummed(recipient),
        gas_limit=int(gas_limit),
        payload=bytes(payload),
    )
    if bytes(topics[1]) != message.id:
        raise AdapterError(
            f"MessageSent at {where}: id {_hex(bytes(topics[1]))} in the log differs from "
            f"the id {_hex(message.id)} computed from its fields"
        )
    return ObservedMessage(
        message=message,
        block_number=int(log["blockNumber"]),
        block_hash=_hex(log["blockHash"]),
        tx_hash=_hex(log["transactionHash"]),
        log_index=int(log["logIndex"]),
    )


def _read_messages(
    w3: Web3, chain_id: int, gateway: str, from_block: int, to_block: int
) -> list[ObservedMessage]:
    topic = _gateway(w3, gateway).events.MessageSent().topic
    logs = _logs(w3, gateway, [topic], from_block, to_block)
    return [_observed(chain_id, log) for log in logs]


def _outcome(log: LogReceipt, status: DeliveryStatus) -> DeliveryOutcome:
    """Decoded here (each of these events has the message id as its first topic; only
    MessageFailed's data is read: its reason)."""
    reason = ""
    if status is DeliveryStatus.FAILED:
        (raw,) = abi_decode(["bytes"], bytes(log["data"]))
        reason = revert_reason(bytes(raw))
    return DeliveryOutcome(
        message_id=bytes(log["topics"][1]),
        status=status,
        tx_hash=_hex(log["transactionHash"]),
        block_number=int(log["blockNumber"]),
        reason=reason,
    )


def _read_outcomes(w3: Web3, gateway: str, from_block: int, to_block: int) -> list[DeliveryOutcome]:
    contract = _gateway(w3, gateway)
    by_topic = {
        HexBytes(contract.events[name]().topic): status for name, status in _DELIVERY_EVENTS.items()
    }
    topics = [t.to_0x_hex() for t in by_topic]
    outcomes = []
    for log in _logs(w3, gateway, topics, from_block, to_block):
        if len(log["topics"]) < 2:
            raise _BadAnswerError("a delivery event without its message id")
        outcomes.append(_outcome(log, by_topic[HexBytes(log["topics"][0])]))
    return outcomes


_CONFIG_CALLS = ("localChainId", "epoch", "threshold", "getValidators", "paused", "outboundNonce")


def _read_gateway_config(w3: Web3, gateway: str) -> GatewayConfig:
    functions = _gateway(w3, gateway).functions
    calls = [functions[name]() for name in _CONFIG_CALLS]
    try:
        with w3.batch_requests() as batch:
            for call in calls:
                batch.add(call)
            values = cast(list[Any], batch.execute())
    except (OSError, ContractLogicError):  # transport errors fail over; a revert is final
        raise
    except (Web3Exception, ValueError, TypeError, KeyError):
        # A node or provider without JSON-RPC batches (some refuse them): one call each.
        values = [call.call() for call in calls]
    chain_id, epoch, threshold, validators, paused, nonce = values
    return GatewayConfig(
        address=to_checksum_address(gateway),
        chain_id=int(chain_id),
        epoch=int(epoch),
        threshold=int(threshold),
        validators=tuple(to_checksum_address(v) for v in validators),
        paused=bool(paused),
        outbound_nonce=int(nonce),
    )


def _contract_chain_id(w3: Web3, address: ChecksumAddress) -> int:
    if not w3.eth.get_code(address):
        raise AdapterError(f"no contract code at {address}")
    contract = w3.eth.contract(address=address, abi=cast(ABI, abi("Gateway")))
    return int(contract.functions.localChainId().call())


def _at(block: int | None) -> BlockIdentifier:
    return "latest" if block is None else block


def _erc20_read(w3: Web3, token: str, function: str, args: list[Any], block: int | None) -> int:
    erc20 = w3.eth.contract(address=to_checksum_address(token), abi=ERC20_ABI)
    return int(erc20.functions[function](*args).call(block_identifier=_at(block)))


# -- delivery ----------------------------------------------------------------------------


@cache
@cache  # building one costs more than encoding most calls with it
def _offline(name: str) -> type[Contract]:
    """A contract class bound to no node, for encoding calldata."""
    return Web3().eth.contract(abi=cast(ABI, abi(name)))


def _calldata(contract: str, function: str, args: list[Any]) -> bytes:
    return bytes(HexBytes(_offline(contract).encode_abi(function, args)))


def delivery_calldata(batch: Sequence[SignedMessage]) -> bytes:
    """`deliverBatch(messages, signatures)` ABI-encoded, as a transaction's data."""
    if not batch:
        raise ValueError("a delivery needs at least one message")
    messages = [item.message.as_tuple() for item in batch]
    signatures = [[bytes(sig) for sig in item.signatures] for item in batch]
    # eth_abi directly: web3's contract encoding was a fifth of a delivery round's time
    return _DELIVER_BATCH + abi_encode(_DELIVER_BATCH_ARGS, [messages, signatures])


_DELIVER_BATCH_ARGS = [f"{MESSAGE_ABI_TYPE}[]", "bytes[][]"]
_DELIVER_BATCH = keccak(text=f"deliverBatch({','.join(_DELIVER_BATCH_ARGS)})")[:4]


def set_rate_limit_calldata(limit: RateLimit) -> bytes:
    """`TokenBridge.setRateLimit(...)` ABI-encoded."""
    args = [
        limit.remote_chain_id,
        to_checksum_address(limit.token),
        limit.outbound,
        limit.capacity,
        limit.refill_per_second,
    ]
    return _calldata("TokenBridge", "setRateLimit", args)


def set_remote_bridge_calldata(remote_chain_id: int, remote_bridge: str) -> bytes:
    """`TokenBridge.setRemoteBridge(chainId, bridge)` ABI-encoded."""
    args = [remote_chain_id, to_checksum_address(remote_bridge)]
    return _calldata("TokenBridge", "setRemoteBridge", args)


def create_wrapped_calldata(spec: WrappedTokenSpec) -> bytes:
    """`TokenBridge.createWrapped(homeChainId, homeToken, name, symbol, decimals)` encoded."""
    home = to_checksum_address(spec.home_token)
    args = [spec.home_chain_id, home, spec.name, spec.symbol, spec.decimals]
    return _calldata("TokenBridge", "createWrapped", args)


def _address_or_none(value: str) -> str | None:
    address = to_checksum_address(value)
    return None if int(address, 16) == 0 else address


def return_to_sender_calldata(transfer: SignedMessage) -> bytes:
    """`TokenBridge.returnToSender(message, signatures)` ABI-encoded."""
    signatures = [bytes(sig) for sig in transfer.signatures]
    return _calldata("TokenBridge", "returnToSender", [transfer.message.as_tuple(), signatures])


def _gas_with_margin(estimate: int) -> int:
    return estimate + estimate * GAS_MARGIN_PERCENT // 100 + GAS_MARGIN_FIXED


def _revert_of(exc: ContractLogicError) -> str:
    """The decoded revert of a failed call or estimate: custom error, string or panic."""
    data: object = exc.data
    if isinstance(data, dict):  # nested one level deeper: Hardhat as "data", Ganache "result"
        data = data.get("data", data.get("result"))
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(HexBytes(data))
    return exc.message or "reverted without a reason"


def _estimate(w3: Web3, tx: TxParams, what: str) -> int:
    """`eth_estimateGas` searching no higher than a transaction may use: the block's gas
    limit and EIP-7825's cap. Hardhat 2 (EDR, Osaka rules) otherwise tries the block's gas
    limit (30M) when an inner call fails, and refuses its own try as over the 2^24 cap."""
    block_limit = int(w3.eth.get_block("latest")["gasLimit"])
    bounded: TxParams = {**tx, "gas": min(block_limit, TX_GAS_CAP)}
    try:
        return int(w3.eth.estimate_gas(bounded))
    except ContractLogicError as exc:
        reason = _revert_of(exc)
        raise SimulationError(f"{what} would revert: {reason}", reason=reason) from None


def _sign(tx: TransactionDictType, private_key: str, what: str) -> tuple[SignedTransaction, str]:
    """Sign locally; an error never carries the key (eth_account messages may echo it)."""
    try:
        account = Account.from_key(private_key)
        return account.sign_transaction(tx), str(account.address)
    except Exception as exc:
        raise AdapterError(
            f"signing {what} failed ({type(exc).__name__}); check the private key"
        ) from None


def _rpc_message(exc: Web3RPCError) -> str:
    """The node's own error message (web3 puts the repr of the error object in str(exc))."""
    error = (exc.rpc_response or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.message)


def _endpoint_url(w3: Web3) -> str:
    """The endpoint as it may be shown (never the URL connected to, which may carry a key)."""
    return str(getattr(w3.provider, "shown", "") or "the node")


def _has_tx(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction(HexBytes(tx_hash))
    except TransactionNotFound:
        return False
    return True


def _sender_and_nonce(raw: bytes) -> tuple[str, int] | None:
    """Who signed a raw transaction and its nonce; None when it does not decode."""
    try:
        sender = str(Account.recover_transaction(raw))
        if raw[:1] and raw[0] <= 0x7F:  # typed (EIP-2718), e.g. EIP-1559
            nonce = int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"])
        else:
            nonce = int.from_bytes(rlp_decode(raw)[0], "big")
    except Exception:  # not a transaction: the node says why when it is sent
        return None
    return sender, nonce


def _refuse_replay(w3: Web3, raw: bytes, tx_hash: str) -> bool:
    """Whether the node already holds this transaction (pending or mined), so it must not be
    broadcast again; NonceTooLowError when its nonce is used by another one. Checked here, not
    left to the node: Ganache 7 takes a used nonce, or the same transaction again, and mines
    it once more."""
    decoded = _sender_and_nonce(raw)
    if decoded is None:
        return False
    if _has_tx(w3, tx_hash):
        return True
    sender, nonce = decoded
    used = int(w3.eth.get_transaction_count(to_checksum_address(sender), "latest"))
    if nonce < used:
        raise NonceTooLowError(
            f"transaction {tx_hash} not sent to {_endpoint_url(w3)}: nonce too low "
            f"({sender} has mined nonces up to {used - 1}, this one is {nonce})"
        )
    return False


def _send_raw(w3: Web3, raw: bytes, tx_hash: str) -> str:
    """Broadcast on one node; its refusals are final (no failover), transport errors are not.

    A transaction the node already holds is not an error, and is not sent again (see
    `_refuse_replay`). If it arrives meanwhile, pending ones are "already known" (geth) or
    "transaction already imported" (anvil); a mined one is refused as "nonce too low", so
    that answer is checked against the node's copy of this very transaction.
    """
    if _refuse_replay(w3, raw, tx_hash):
        return tx_hash
    try:
        return _hex(w3.eth.send_raw_transaction(raw))
    except Web3RPCError as exc:
        message = _rpc_message(exc)
    lowered = message.lower()
    if any(known in lowered for known in _ALREADY_KNOWN):
        return tx_hash
    where = f"transaction {tx_hash} refused by {_endpoint_url(w3)}: {message}"
    if "nonce too low" in lowered:
        if _has_tx(w3, tx_hash):
            return tx_hash
        raise NonceTooLowError(where)
    if "underpriced" in lowered:
        raise UnderpricedError(where)
    raise AdapterError(where)


def _priority_fee(w3: Web3) -> int:
    response = w3.provider.make_request(RPCEndpoint("eth_maxPriorityFeePerGas"), [])
    result = response.get("result")
    if "error" in response or not isinstance(result, str):
        return DEFAULT_PRIORITY_FEE
    return int(result, 16)


def _fee_quote(w3: Web3) -> FeeQuote:
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:
        raise AdapterError(f"{_endpoint_url(w3)} reports no base fee: the chain lacks EIP-1559")
    priority = _priority_fee(w3)
    return FeeQuote(max_fee_per_gas=2 * int(base_fee) + priority, max_priority_fee_per_gas=priority)


class EvmAdapter:
    """A `ChainAdapter`, `BridgeOperator` and `BridgeAdmin` for EVM chains over JSON-RPC."""

    family: str = "evm"

    def __init__(
        self,
        rpc_urls: Sequence[str],
        *,
        timeout: float = 5.0,
        quorum: int = 1,
        cooldown: float = DEFAULT_COOLDOWN,
        shown_urls: Sequence[str] | None = None,
        address_guard: AddressGuard | None = None,
        max_lag: int = DEFAULT_MAX_LAG,
    ) -> None:
        urls = [rpc_urls] if isinstance(rpc_urls, str) else list(rpc_urls)
        shown = list(shown_urls) if shown_urls is not None else urls
        if not urls:
            raise ValueError("an EVM adapter needs at least one RPC URL")
        if len(shown) != len(urls):
            raise ValueError("shown_urls must give one shown form for each RPC URL")
        if not 1 <= quorum <= len(urls):
            raise ValueError(f"quorum must be between 1 and {len(urls)} (the URLs), not {quorum}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.rpc_urls: Sequence[str] = tuple(shown)  # as they may be shown
        self.timeout = timeout
        self.quorum = quorum
        self.cooldown = cooldown
        self.max_lag = max_lag
        self._best = -1  # the highest block number any endpoint has shown
        self._endpoints = [
            _Endpoint(url, timeout, shown=form, guard=address_guard)
            for url, form in zip(urls, shown, strict=True)
        ]
        self._preferred = 0
        self._lock = threading.Lock()
        self._known_chain_id: int | None = None
        # gateway -> gas per message of its last estimated batch: a guess for the next batch
        self._gas_per_message: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"EvmAdapter({list(self.rpc_urls)!r}, quorum={self.quorum})"

    # -- endpoint selection -------------------------------------------------------------

    def _order(self) -> list[_Endpoint]:
        """Endpoints from the last healthy one on; those cooling down go last."""
        with self._lock:
            start = self._preferred
        n = len(self._endpoints)
        rotated = [self._endpoints[(start + i) % n] for i in range(n)]
        now = time.monotonic()
        return [e for e in rotated if e.cool_until <= now] + [
            e for e in rotated if e.cool_until > now
        ]

    def _mark(self, endpoint: _Endpoint, *, healthy: bool) -> None:
        with self._lock:
            if healthy:
                endpoint.cool_until = 0.0
                self._preferred = self._endpoints.index(endpoint)
            else:
                endpoint.cool_until = time.monotonic() + self.cooldown

    def _attempt(self, endpoint: _Endpoint, what: str, fn: Callable[[Web3], T]) -> T:
        """One call on one endpoint; a revert is final, other errors fail the endpoint."""
        started, outcome = time.monotonic(), "error"
        try:
            result = fn(endpoint.web3())
            outcome = "ok"
        except AdapterError:
            outcome = "refused"  # the node answered, and said no (a revert, a used nonce)
            raise
        except _EndpointBehindError as exc:
            self._mark(endpoint, healthy=False)
            raise _EndpointFailureError(f"behind the chain: {exc}") from None
        except (ContractLogicError, BadFunctionCallOutput) as exc:
            outcome = "reverted"
            raise AdapterError(
                f"{what} failed on {endpoint.shown}: {endpoint.describe(exc)}"
            ) from None
        except Web3RPCError as exc:  # the node answered with an error: no cool-down
            raise _EndpointFailureError(endpoint.describe(exc)) from None
        except (OSError, Web3Exception, ValueError, TransportRefusedError) as exc:
            self._mark(endpoint, healthy=False)
            raise _EndpointFailureError(endpoint.describe(exc)) from None
        finally:
            report_rpc(endpoint.shown, time.monotonic() - started, outcome)
        self._mark(endpoint, healthy=True)
        return result

    def _gather(
        self, what: str, fn: Callable[[Web3], T], done: Callable[[list[T]], bool]
    ) -> tuple[list[tuple[str, T]], list[str]]:
        answers: list[tuple[str, T]] = []
        errors: list[str] = []
        for endpoint in self._order():
            try:
                answers.append((endpoint.shown, self._attempt(endpoint, what, fn)))
            except _EndpointFailureError as exc:
                errors.append(f"{endpoint.shown}: {exc}")
                continue
            if done([value for _, value in answers]):
                break
        if not answers:
            raise EndpointUnavailableError(
                f"{what}: every RPC endpoint failed: {'; '.join(errors)}"
            )
        return answers, errors

    def _call(self, what: str, fn: Callable[[Web3], T]) -> T:
        answers, _ = self._gather(what, fn, lambda values: True)
        return answers[0][1]

    def _agreed(self, what: str, fn: Callable[[Web3], T]) -> T:
        """The answer `quorum` endpoints agree on, else QuorumError."""

        def enough(values: list[T]) -> bool:
            return values.count(values[-1]) >= self.quorum

        answers, errors = self._gather(what, fn, enough)
        values = [value for _, value in answers]
        if enough(values):
            return values[-1]
        seen = [f"{url} -> {_summary(value)}" for url, value in answers] + errors
        raise QuorumError(f"{what}: fewer than {self.quorum} endpoints agree ({'; '.join(seen)})")

    # -- lagging endpoints ----------------------------------------------------------------
    # A node that lags answers without error, but from the past: a lower head, no such block,
    # no logs yet. Each check below turns such an answer into a failure of that endpoint, so
    # the call fails over and the endpoint cools down. (Trusting it would make blocks the
    # hub already saw look missing, which is not a reorg, and ranges of logs look empty.)

    def _fresh(self, head: BlockRef) -> BlockRef:
        with self._lock:
            best = self._best
            self._best = max(best, head.number)
        if head.number + self.max_lag < best:
            raise _EndpointBehindError(
                f"its head {head.number} is {best - head.number} blocks behind block {best}"
            )
        return head

    def _known(self, number: int, block_hash: str | None) -> str | None:
        if block_hash is None and number <= self._best:
            raise _EndpointBehindError(f"it has no block {number}, which the chain has")
        return block_hash

    @staticmethod
    def _reached(w3: Web3, number: int) -> None:
        head = int(w3.eth.block_number)
        if head < number:
            raise _EndpointBehindError(f"its head {head} is below block {number}")

    def _within_reach(self, w3: Web3, to_block: int, read: Callable[[], T]) -> T:
        """`read` (logs up to `to_block`) on a node that has `to_block` before it answers and
        still after: a node that fell behind meanwhile (restarted, or lagging from one call to
        the next) answers a range of logs without its last blocks, without error."""
        self._reached(w3, to_block)
        answer = read()
        self._reached(w3, to_block)
        return answer

    # -- ChainReader ----------------------------------------------------------------------

    def chain_id(self) -> int:
        value = self._agreed("chain id", lambda w3: int(w3.eth.chain_id))
        self._known_chain_id = value
        return value

    def normalize_address(self, address: str) -> str:
        """The EIP-55 checksummed form; ValueError for a non-address or a bad checksum."""
        if not isinstance(address, str) or not is_hex_address(address):
            raise ValueError(f"not an EVM address: {address!r}")
        body = address[2:]
        mixed = body != body.lower() and body != body.upper()
        if mixed and not is_checksum_address(address):
            raise ValueError(f"EVM address with a bad EIP-55 checksum: {address}")
        return to_checksum_address(address)

    def _chain_id_cached(self) -> int:
        return self._known_chain_id if self._known_chain_id is not None else self.chain_id()

    def probe_endpoints(self) -> list[EndpointReport]:
        reports = []
        for endpoint in self._endpoints:
            try:
                cid = self._attempt(endpoint, "chain id", lambda w3: int(w3.eth.chain_id))
            except (_EndpointFailureError, AdapterError) as exc:
                reports.append(EndpointReport(url=endpoint.shown, chain_id=None, error=str(exc)))
            else:
                reports.append(EndpointReport(url=endpoint.shown, chain_id=cid))
        return reports

    def head(self) -> BlockRef:
        """The head; the first time, every endpoint is asked (a process must not start on
        an endpoint that lags without knowing it)."""

        def read(w3: Web3) -> BlockRef:
            return self._fresh(_block_ref(w3, "latest"))

        if self._best >= 0 or len(self._endpoints) == 1:
            return self._call("head block", read)
        everyone = len(self._endpoints)
        answers, _ = self._gather("head block", read, lambda values: len(values) == everyone)
        return max((ref for _, ref in answers), key=lambda ref: ref.number)

    def finalized_block(self, policy: FinalityPolicy) -> BlockRef:
        what = f"finalized block ({policy.as_value()})"
        if self.quorum <= 1:
            return self._call(what, lambda w3: _finalized_ref(w3, policy, self._fresh))
        answers, errors = self._gather(
            what,
            lambda w3: _finalized_ref(w3, policy, self._fresh).number,
            lambda v: len(v) >= self.quorum,
        )
        if len(answers) < self.quorum:
            raise QuorumError(
                f"{what}: fewer than {self.quorum} endpoints answered ({'; '.join(errors)})"
            )
        number = min(value for _, value in answers)
        block_hash = self.block_hash(number)
        if block_hash is None:
            raise QuorumError(f"{what}: block {number} vanished while endpoints were asked")
        return BlockRef(number=number, hash=block_hash)

    def block_hash(self, number: int) -> str | None:
        return self._agreed(
            f"hash of block {number}", lambda w3: self._known(number, _block_hash(w3, number))
        )

    def receipt(self, tx_hash: str) -> Receipt | None:
        return self._call(f"receipt of {tx_hash}", lambda w3: _receipt(w3, tx_hash))

    def code_at(self, address: str) -> bytes:
        addr = to_checksum_address(address)
        return self._call(f"code at {addr}", lambda w3: bytes(w3.eth.get_code(addr)))

    def contract_chain_id(self, address: str) -> int:
        addr = to_checksum_address(address)
        return self._call(f"localChainId() of {addr}", lambda w3: _contract_chain_id(w3, addr))

    def token_balance(self, token: str, holder: str, block: int | None = None) -> int:
        tok, who = to_checksum_address(token), to_checksum_address(holder)
        return self._call(
            f"balanceOf({who}) on token {tok} at block {'latest' if block is None else block}",
            lambda w3: _erc20_read(w3, tok, "balanceOf", [who], block),
        )

    def token_supply(self, token: str, block: int | None = None) -> int:
        tok = to_checksum_address(token)
        return self._call(
            f"totalSupply() of token {tok} at block {'latest' if block is None else block}",
            lambda w3: _erc20_read(w3, tok, "totalSupply", [], block),
        )

    # -- OutboxReader ---------------------------------------------------------------------

    def messages(self, gateway: str, from_block: int, to_block: int) -> list[ObservedMessage]:
        gw = to_checksum_address(gateway)
        chain_id = self._chain_id_cached()

        def read(w3: Web3) -> list[ObservedMessage]:
            return self._within_reach(
                w3, to_block, lambda: _read_messages(w3, chain_id, gw, from_block, to_block)
            )

        return self._agreed(f"MessageSent logs of {gw} in blocks {from_block}..{to_block}", read)

    def gateway_config(self, gateway: str) -> GatewayConfig:
        gw = to_checksum_address(gateway)
        return self._call(f"configuration of gateway {gw}", lambda w3: _read_gateway_config(w3, gw))

    # -- Deliverer ------------------------------------------------------------------------

    def is_delivered(self, gateway: str, message_id: bytes) -> bool:
        gw = to_checksum_address(gateway)
        if len(message_id) != 32:
            raise ValueError(f"a message id is 32 bytes, not {len(message_id)}")
        return self._call(
            f"delivered({_hex(message_id)}) on {gw}",
            lambda w3: bool(_gateway(w3, gw).functions.delivered(message_id).call()),
        )

    def delivery_outcomes(
        self, gateway: str, from_block: int, to_block: int
    ) -> list[DeliveryOutcome]:
        gw = to_checksum_address(gateway)

        def read(w3: Web3) -> list[DeliveryOutcome]:
            return self._within_reach(
                w3, to_block, lambda: _read_outcomes(w3, gw, from_block, to_block)
            )

        return self._call(f"delivery events of {gw} in blocks {from_block}..{to_block}", read)

    def simulate_delivery(self, gateway: str, batch: Sequence[SignedMessage], sender: str) -> int:
        """The gas for the batch from `sender`; SimulationError with the decoded revert (e.g.
        "InsufficientSignatures()") when it would revert. A guess from the last batch's gas per
        message is tried first with one `eth_call` at that gas: if the batch goes through with
        it, so does the transaction (the gateway reverts rather than under-supply a recipient).
        Otherwise `eth_estimateGas` (plus a margin) decides, which a node computes by running
        the batch many times over."""
        gw = to_checksum_address(gateway)
        what = f"deliverBatch of {len(batch)} message(s) to gateway {gw}"
        data = delivery_calldata(batch)
        guess = self._gas_guess(gw, len(batch))
        if guess is not None and self._passes_with(gw, data, sender, guess, what):
            return guess
        gas = self._simulate(gw, data, sender, what)
        if len(batch) >= GUESS_FROM_BATCHES_OF:
            self._gas_per_message[gw] = -(-gas // len(batch))
        return gas

    def _gas_guess(self, gateway: str, n: int) -> int | None:
        per = self._gas_per_message.get(gateway)
        if per is None or n < GUESS_FROM_BATCHES_OF:
            return None
        return min(per * n, TX_GAS_CAP)

    def _passes_with(
        self, to: ChecksumAddress, data: bytes, sender: str, gas: int, what: str
    ) -> bool:
        """Whether the call goes through with exactly `gas` (no error, no revert)."""
        tx: TxParams = {"from": to_checksum_address(sender), "to": to, "data": data, "gas": gas}

        def call(w3: Web3) -> bool:
            try:
                w3.eth.call(tx)
            except (ContractLogicError, Web3RPCError):
                return False  # a revert or out of gas: the estimate finds out which
            return True

        return self._call(f"{what} with {gas} gas", call)

    def sign_delivery(
        self,
        gateway: str,
        batch: Sequence[SignedMessage],
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        """An EIP-1559 `deliverBatch` transaction signed locally; nothing is sent."""
        gw = to_checksum_address(gateway)
        what = f"deliverBatch to {gw} with nonce {nonce}"
        return self._sign_call(gw, delivery_calldata(batch), private_key, nonce, fee, gas, what)

    def _simulate(self, to: ChecksumAddress, data: bytes, sender: str, what: str) -> int:
        """`eth_estimateGas` plus a margin; SimulationError with the decoded revert."""
        frm = to_checksum_address(sender)
        tx: TxParams = {"from": frm, "to": to, "data": data}
        what = f"{what} from {frm}"
        return _gas_with_margin(self._call(what, lambda w3: _estimate(w3, tx, what)))

    def _sign_call(
        self,
        to: ChecksumAddress,
        data: bytes,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
        what: str,
    ) -> SignedTx:
        """An EIP-1559 transaction calling `to` with `data`, signed locally; nothing is sent."""
        if nonce < 0 or gas <= 0:
            raise ValueError(f"a transaction needs nonce >= 0 and gas > 0, not {nonce}, {gas}")
        if fee.max_fee_per_gas < fee.max_priority_fee_per_gas:
            raise ValueError(f"max fee below the priority fee: {fee}")
        tx: TransactionDictType = {
            "type": 2,
            "chainId": self._chain_id_cached(),
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fee.max_fee_per_gas,
            "maxPriorityFeePerGas": fee.max_priority_fee_per_gas,
        }
        signed, sender = _sign(tx, private_key, what)
        return SignedTx(
            tx_hash=_hex(signed.hash),
            raw=bytes(signed.raw_transaction),
            sender=sender,
            nonce=nonce,
            fee=fee,
            gas=gas,
        )

    def send_raw(self, raw: bytes) -> str:
        """Broadcast on the current healthy endpoint, failing over on transport errors only;
        a transaction the node already has returns its hash."""
        tx_hash = _hex(keccak(raw))
        return self._call(f"sending transaction {tx_hash}", lambda w3: _send_raw(w3, raw, tx_hash))

    def account_nonce(self, address: str, pending: bool = False) -> int:
        who = to_checksum_address(address)
        tag: Literal["pending", "latest"] = "pending" if pending else "latest"
        return self._call(
            f"{tag} nonce of {who}", lambda w3: int(w3.eth.get_transaction_count(who, tag))
        )

    def fee_quote(self) -> FeeQuote:
        """Priority fee from `eth_maxPriorityFeePerGas` (else 1 gwei); max fee twice the
        latest base fee plus the priority fee."""
        return self._call("fee quote", _fee_quote)

    def native_balance(self, address: str) -> int:
        who = to_checksum_address(address)
        return self._call(f"balance of {who}", lambda w3: int(w3.eth.get_balance(who)))

    # -- BridgeOperator -------------------------------------------------------------------

    def rate_limit(
        self, bridge: str, remote_chain_id: int, token: str, outbound: bool
    ) -> RateLimitState:
        """`TokenBridge.rateLimit(...)`: the bucket and what may pass now."""
        br, tok = to_checksum_address(bridge), to_checksum_address(token)
        direction = "outbound" if outbound else "inbound"
        capacity, refill, available = self._call(
            f"{direction} rate limit of {tok} with chain {remote_chain_id} on bridge {br}",
            lambda w3: _bridge(w3, br).functions.rateLimit(remote_chain_id, tok, outbound).call(),
        )
        limit = RateLimit(
            remote_chain_id=remote_chain_id,
            token=tok,
            outbound=outbound,
            capacity=int(capacity),
            refill_per_second=int(refill),
        )
        return RateLimitState(limit=limit, available=int(available))

    def returns(self, bridge: str, from_block: int, to_block: int) -> list[ReturnedTransfer]:
        """`TransferReturned` events of a bridge: which transfer each return gives back."""
        br = to_checksum_address(bridge)
        return self._call(
            f"TransferReturned logs of {br} in blocks {from_block}..{to_block}",
            lambda w3: self._within_reach(
                w3, to_block, lambda: _read_returns(w3, br, from_block, to_block)
            ),
        )

    def bridge_paused(self, bridge: str) -> bool:
        br = to_checksum_address(bridge)
        return self._call(
            f"paused() of bridge {br}", lambda w3: bool(_bridge(w3, br).functions.paused().call())
        )

    def token_decimals(self, token: str) -> int:
        tok = to_checksum_address(token)
        return self._call(
            f"decimals() of token {tok}", lambda w3: _erc20_read(w3, tok, "decimals", [], None)
        )

    def simulate_set_rate_limit(self, bridge: str, limit: RateLimit, sender: str) -> int:
        br = to_checksum_address(bridge)
        what = f"setRateLimit on bridge {br}"
        return self._simulate(br, set_rate_limit_calldata(limit), sender, what)

    def sign_set_rate_limit(
        self, bridge: str, limit: RateLimit, private_key: str, nonce: int, fee: FeeQuote, gas: int
    ) -> SignedTx:
        br = to_checksum_address(bridge)
        data, what = set_rate_limit_calldata(limit), f"setRateLimit on {br} with nonce {nonce}"
        return self._sign_call(br, data, private_key, nonce, fee, gas, what)

    def simulate_return_to_sender(self, bridge: str, transfer: SignedMessage, sender: str) -> int:
        br = to_checksum_address(bridge)
        what = f"returnToSender of 0x{transfer.message.id.hex()} on bridge {br}"
        return self._simulate(br, return_to_sender_calldata(transfer), sender, what)

    def sign_return_to_sender(
        self,
        bridge: str,
        transfer: SignedMessage,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        br = to_checksum_address(bridge)
        data = return_to_sender_calldata(transfer)
        what = f"returnToSender on {br} with nonce {nonce}"
        return self._sign_call(br, data, private_key, nonce, fee, gas, what)

    # -- BridgeAdmin ----------------------------------------------------------------------

    def remote_bridge(self, bridge: str, remote_chain_id: int) -> str | None:
        br = to_checksum_address(bridge)
        return self._call(
            f"remoteBridge({remote_chain_id}) of bridge {br}",
            lambda w3: _address_or_none(
                _bridge(w3, br).functions.remoteBridge(remote_chain_id).call()
            ),
        )

    def wrapped_token(self, bridge: str, home_chain_id: int, home_token: str) -> str | None:
        br, home = to_checksum_address(bridge), to_checksum_address(home_token)
        return self._call(
            f"wrappedToken({home_chain_id}, {home}) of bridge {br}",
            lambda w3: _address_or_none(
                _bridge(w3, br).functions.wrappedToken(home_chain_id, home).call()
            ),
        )

    def simulate_set_remote_bridge(
        self, bridge: str, remote_chain_id: int, remote_bridge: str, sender: str
    ) -> int:
        br = to_checksum_address(bridge)
        data = set_remote_bridge_calldata(remote_chain_id, remote_bridge)
        return self._simulate(br, data, sender, f"setRemoteBridge({remote_chain_id}) on {br}")

    def sign_set_remote_bridge(
        self,
        bridge: str,
        remote_chain_id: int,
        remote_bridge: str,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        br = to_checksum_address(bridge)
        data = set_remote_bridge_calldata(remote_chain_id, remote_bridge)
        what = f"setRemoteBridge({remote_chain_id}) on {br} with nonce {nonce}"
        return self._sign_call(br, data, private_key, nonce, fee, gas, what)

    def simulate_create_wrapped(self, bridge: str, spec: WrappedTokenSpec, sender: str) -> int:
        br = to_checksum_address(bridge)
        what = f"createWrapped({spec.home_chain_id}, {spec.home_token}) on {br}"
        return self._simulate(br, create_wrapped_calldata(spec), sender, what)

    def sign_create_wrapped(
        self,
        bridge: str,
        spec: WrappedTokenSpec,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        br = to_checksum_address(bridge)
        what = f"createWrapped({spec.home_chain_id}, {spec.home_token}) on {br} nonce {nonce}"
        return self._sign_call(
            br, create_wrapped_calldata(spec), private_key, nonce, fee, gas, what
        )
