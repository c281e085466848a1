"""The chain-adapter protocols and the value types both the hub and the adapters read.

Cut by role, as Hyperlane cuts its chain traits: reading a chain, reading its outbox,
delivering to it. Everything here is synchronous (Celery's prefork workers are).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Protocol, runtime_checkable

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

MESSAGE_VERSION = 2
MESSAGE_ABI_TYPE = "(uint8,uint64,address,uint64,uint64,address,address,uint64,bytes)"

# -- observing RPC calls ----------------------------------------------------------------
# An adapter reports each call it makes on one endpoint: (url, seconds, outcome), outcome
# "ok", "error" (transport or node error), "reverted" or "refused" (the node said no). The
# hub turns these into metrics; adapters know nothing of it. The URL may carry a provider
# key: observers must not show it.
RpcObserver = Callable[[str, float, str], None]
_rpc_observers: list[RpcObserver] = []


def observe_rpc(observer: RpcObserver) -> None:
    """Call `observer` after every RPC call any adapter of this process makes."""
    if observer not in _rpc_observers:
        _rpc_observers.append(observer)


def report_rpc(url: str, seconds: float, outcome: str) -> None:
    """For adapters: one call on one endpoint is done. Observing never breaks a call."""
    for observer in list(_rpc_observers):
        with contextlib.suppress(Exception):
            observer(url, seconds, outcome)


# Asked at every connection, for every address the host resolved to: (host, address) ->
# why the adapter must not connect there, or None. The hub passes its network policy.
AddressGuard = Callable[[str, str], str | None]


class AdapterError(Exception):
    """A chain could not answer; the message says which endpoint and why."""


class EndpointUnavailableError(AdapterError):
    """Every RPC endpoint of a chain failed for one call."""


class QuorumError(AdapterError):
    """Endpoints disagreed on a read that decides safety."""


class SimulationError(AdapterError):
    """A transaction would revert; `reason` is the decoded revert, e.g. "UnknownSigner()"."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class NonceTooLowError(AdapterError):
    """The node already has a transaction with this nonce from this account mined."""


class UnderpricedError(AdapterError):
    """A replacement was refused: its fee is not far enough above the pending one's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A cross-chain message exactly as the gateway contracts encode it (version 2).

    `src_gateway` is the gateway that emitted it, so it is part of the id; `gas_limit` is the
    gas the destination gateway forwards to the recipient, exactly."""

    src_chain_id: int
    src_gateway: str
    dst_chain_id: int
    nonce: int
    sender: str
    recipient: str
    gas_limit: int
    payload: bytes
    version: int = MESSAGE_VERSION

    def as_tuple(self) -> tuple[int, int, str, int, int, str, str, int, bytes]:
        """The fields in the order of the Solidity struct (`MESSAGE_ABI_TYPE`)."""
        return (
            self.version,
            self.src_chain_id,
            to_checksum_address(self.src_gateway),
            self.dst_chain_id,
            self.nonce,
            to_checksum_address(self.sender),
            to_checksum_address(self.recipient),
            self.gas_limit,
            self.payload,
        )

    @property
    def id(self) -> bytes:
        """keccak256(abi.encode(message)), the key of a message everywhere."""
        return _message_id(self)


@lru_cache(maxsize=8192)  # a relay step asks a message's id several times; it is pure
def _message_id(message: Message) -> bytes:
    return keccak(abi_encode([MESSAGE_ABI_TYPE], [message.as_tuple()]))


@dataclass(frozen=True, slots=True)
class BlockRef:
    number: int
    hash: str


@dataclass(frozen=True, slots=True)
class ObservedMessage:
    """A message read from a source chain's outbox, with where it was seen."""

    message: Message
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int

    @property
    def id(self) -> bytes:
        return self.message.id


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    block_number: int
    block_hash: str
    success: bool
    logs_count: int = 0


class FinalityKind(StrEnum):
    DEPTH = "depth"
    SAFE = "safe"
    FINALIZED = "finalized"


@dataclass(frozen=True, slots=True)
class FinalityPolicy:
    """When a block counts as final: a depth below the head, or the node's block tag."""

    kind: FinalityKind
    depth: int = 0

    @classmethod
    def parse(cls, value: int | str) -> FinalityPolicy:
        """Read a registration's `finality`: a block depth, or "safe" / "finalized"."""
        if isinstance(value, bool):
            raise ValueError("finality must be a block depth or 'safe' / 'finalized'")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            depth = int(value)
            if depth < 0 or depth > 10_000:
                raise ValueError(f"finality depth must be between 0 and 10000, not {depth}")
            return cls(FinalityKind.DEPTH, depth)
        if value in (FinalityKind.SAFE, FinalityKind.FINALIZED):
            return cls(FinalityKind(value))
        raise ValueError(f"finality must be a block depth or 'safe' / 'finalized', not {value!r}")

    def as_value(self) -> int | str:
        return self.depth if self.kind is FinalityKind.DEPTH else self.kind.value


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    # the recipient gave the message up without handling it (a bridge returned the transfer)
    CONSUMED = "consumed"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What a destination gateway said about one message of a delivery."""

    message_id: bytes
    status: DeliveryStatus
    tx_hash: str
    block_number: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A message with the validator signatures a destination gateway checks."""

    message: Message
    signatures: Sequence[bytes] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """EIP-1559 fees for a transaction."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def bumped(self, percent: int) -> FeeQuote:
        """Both fees raised by `percent` (rounded up), as a replacement needs (>= 10%)."""
        return FeeQuote(
            -(-self.max_fee_per_gas * (100 + percent) // 100),
            -(-self.max_priority_fee_per_gas * (100 + percent) // 100),
        )


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction, kept so it can be sent again unchanged after a crash."""

    tx_hash: str
    raw: bytes
    sender: str
    nonce: int
    fee: FeeQuote
    gas: int


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    address: str
    chain_id: int
    epoch: int
    threshold: int
    validators: tuple[str, ...]
    paused: bool
    outbound_nonce: int


NO_RATE_LIMIT = 2**256 - 1
"""What a bridge reports as `available` where no limit is set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """A token bridge's token bucket for one remote chain, local token and direction: at most
    `capacity` at once, refilled by `refill_per_second`. Capacity 0 means no limit."""

    remote_chain_id: int
    token: str
    outbound: bool
    capacity: int
    refill_per_second: int

    @property
    def limited(self) -> bool:
        return self.capacity > 0


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """A rate limit as the bridge holds it, and what may pass now (`NO_RATE_LIMIT` if none)."""

    limit: RateLimit
    available: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnedTransfer:
    """A bridge gave a transfer back to its sender: `return_id` carries the tokens home."""

    original_id: bytes
    return_id: bytes
    tx_hash: str


@dataclass(frozen=True, slots=True)
class EndpointReport:
    """One RPC endpoint's answer to "which chain are you?"."""

    url: str
    chain_id: int | None
    error: str = ""


@runtime_checkable
class ChainReader(Protocol):
    """Identity, health and the reads the hub shows."""

    def chain_id(self) -> int: ...

    def normalize_address(self, address: str) -> str:
        """The family's canonical form of an address; ValueError when it is not one."""
        ...

    def probe_endpoints(self) -> list[EndpointReport]: ...

    def head(self) -> BlockRef: ...

    def finalized_block(self, policy: FinalityPolicy) -> BlockRef: ...

    def block_hash(self, number: int) -> str | None: ...

    def receipt(self, tx_hash: str) -> Receipt | None: ...

    def code_at(self, address: str) -> bytes: ...

    def contract_chain_id(self, address: str) -> int: ...

    def token_balance(self, token: str, holder: str, block: int | None = None) -> int: ...

    def token_supply(self, token: str, block: int | None = None) -> int: ...


@runtime_checkable
class OutboxReader(Protocol):
    """Outbound messages of a gateway."""

    def messages(self, gateway: str, from_block: int, to_block: int) -> list[ObservedMessage]: ...

    def gateway_config(self, gateway: str) -> GatewayConfig: ...


@runtime_checkable
class InboxReader(Protocol):
    """What a destination gateway says it did: delivered, failed, skipped, consumed."""

    def is_delivered(self, gateway: str, message_id: bytes) -> bool: ...

    def delivery_outcomes(
        self, gateway: str, from_block: int, to_block: int
    ) -> list[DeliveryOutcome]: ...


@runtime_checkable
class Submitter(Protocol):
    """Sending transactions from an account: nonces, fees, balance, broadcast."""

    def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction and return its hash. Sending one the node already
        has is not an error; NonceTooLowError and UnderpricedError say why it was refused."""
        ...

    def account_nonce(self, address: str, pending: bool = False) -> int: ...

    def fee_quote(self) -> FeeQuote: ...

    def native_balance(self, address: str) -> int: ...


@runtime_checkable
class Deliverer(InboxReader, Submitter, Protocol):
    """Delivery to a destination gateway: build, simulate, sign and send a batch."""

    def simulate_delivery(self, gateway: str, batch: Sequence[SignedMessage], sender: str) -> int:
        """The gas the batch needs; SimulationError (with the decoded reason) if it reverts."""
        ...

    def sign_delivery(
        self,
        gateway: str,
        batch: Sequence[SignedMessage],
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        """A signed `deliverBatch` transaction; nothing is sent."""
        ...


@runtime_checkable
class BridgeOperator(Protocol):
    """What the hub's operators do with a chain's token bridge: read its limits, whether it is
    paused and a token's decimals; simulate and sign `setRateLimit` (guardian or owner) and
    `returnToSender` (a transfer that was not delivered, back to its sender on the source).
    Signing sends nothing: the signed bytes go out through `Deliverer.send_raw`."""

    def rate_limit(
        self, bridge: str, remote_chain_id: int, token: str, outbound: bool
    ) -> RateLimitState: ...

    def returns(self, bridge: str, from_block: int, to_block: int) -> list[ReturnedTransfer]:
        """Transfers the bridge returned to their senders in a block range."""
        ...

    def bridge_paused(self, bridge: str) -> bool: ...

    def token_decimals(self, token: str) -> int: ...

    def simulate_set_rate_limit(self, bridge: str, limit: RateLimit, sender: str) -> int:
        """The gas `setRateLimit` needs; SimulationError (e.g. "NotGuardianOrOwner(...)")."""
        ...

    def sign_set_rate_limit(
        self, bridge: str, limit: RateLimit, private_key: str, nonce: int, fee: FeeQuote, gas: int
    ) -> SignedTx: ...

    def simulate_return_to_sender(self, bridge: str, transfer: SignedMessage, sender: str) -> int:
        """The gas `returnToSender` needs; SimulationError (e.g. "AlreadyDelivered(...)")."""
        ...

    def sign_return_to_sender(
        self,
        bridge: str,
        transfer: SignedMessage,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WrappedTokenSpec:
    """A wrapped copy of a home chain's token, as a token bridge creates it."""

    home_chain_id: int
    home_token: str
    name: str
    symbol: str
    decimals: int


@runtime_checkable
class BridgeAdmin(Protocol):
    """What joining a chain to an asset needs from a token bridge, under its owner's key:
    read and set which bridge it trusts for a remote chain, read and create the wrapped copy
    of a home token. Reads come first, so that a join run twice never acts twice; signing
    sends nothing (the bytes go out through `Deliverer.send_raw`)."""

    def remote_bridge(self, bridge: str, remote_chain_id: int) -> str | None:
        """The bridge trusted for messages from `remote_chain_id`; None when there is none."""
        ...

    def wrapped_token(self, bridge: str, home_chain_id: int, home_token: str) -> str | None:
        """The wrapped copy of a home token this bridge created; None when there is none."""
        ...

    def simulate_set_remote_bridge(
        self, bridge: str, remote_chain_id: int, remote_bridge: str, sender: str
    ) -> int: ...

    def sign_set_remote_bridge(
        self,
        bridge: str,
        remote_chain_id: int,
        remote_bridge: str,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx: ...

    def simulate_create_wrapped(self, bridge: str, spec: WrappedTokenSpec, sender: str) -> int: ...

    def sign_create_wrapped(
        self,
        bridge: str,
        spec: WrappedTokenSpec,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx: ...


@runtime_checkable
class ChainAdapter(ChainReader, OutboxReader, Deliverer, Protocol):
    """All a relayer needs from one chain. A family's adapter class is built as
    `Adapter(rpc_urls, timeout=..., shown_urls=..., address_guard=...)`: it connects to
    `rpc_urls` (which may carry keys), and its errors, logs and `rpc_urls` attribute name only
    the `shown_urls` (the redacted forms) and never the parts of a URL they hide; with an
    `address_guard`, it asks the guard at every connection and connects only to an address
    the guard allowed, and it never follows a redirect."""

    family: str
    rpc_urls: Sequence[str]
