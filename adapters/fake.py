"""An in-memory chain family, `fake`: chains that live in this process, for fast tests of the
relay's stages without a node (and the offline parts of the conformance suite).

A `FakeChain` holds blocks, gateway logs, receipts, deliveries, token balances and accounts;
`FakeAdapter` reads and drives it through the same role protocols as a real adapter, on
URLs `fake://<name>` that `FakeChain.open` registers in this process. Tests act on the chain
directly: send messages, mine, reorg, make a recipient or a simulation revert, pause.

The gateway it models checks what the hub relies on and no more: the destination chain id,
a threshold of signatures (counted, not recovered: the hub checks them), a pause, idempotent
delivery, a recipient's failure as an outcome, and a transaction without enough gas reverts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from adapters.base import (
    NO_RATE_LIMIT,
    AdapterError,
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
    RateLimit,
    RateLimitState,
    Receipt,
    ReturnedTransfer,
    SignedMessage,
    SignedTx,
    SimulationError,
)

FAMILY = "fake"
GAS_PER_TX = 50_000
GAS_PER_MESSAGE = 100_000
FEE = FeeQuote(max_fee_per_gas=2 * 10**9, max_priority_fee_per_gas=10**9)
_CHAINS: dict[str, FakeChain] = {}  # url -> chain, for this process


def _address(n: int) -> str:
    return to_checksum_address(n.to_bytes(20, "big"))


@dataclass
class _Block:
    number: int
    hash: str
    messages: list[ObservedMessage] = field(default_factory=list)
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    returns: list[ReturnedTransfer] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)  # after this block


class FakeChain:
    """One in-memory chain with a gateway, a token bridge and a token."""

    def __init__(
        self,
        name: str,
        chain_id: int,
        *,
        validators: Sequence[str] = (),
        threshold: int = 1,
        automine: bool = True,
    ) -> None:
        self.name, self.chain_id, self.automine = name, chain_id, automine
        self.gateway, self.bridge = _address(chain_id * 16 + 1), _address(chain_id * 16 + 2)
        self.token = _address(chain_id * 16 + 3)
        self.validators, self.threshold, self.epoch = tuple(validators), threshold, 1
        self.paused = False
        self.outbound_nonce = 0
        self.nonces: dict[str, int] = {}  # mined transactions per account
        self.balances: dict[str, int] = {}
        self.delivered: set[bytes] = set()
        self.pending: dict[str, tuple[SignedTx, dict[str, Any]]] = {}
        self.limits: dict[tuple[int, str, bool], RateLimit] = {}
        # what a test makes happen: message id -> a recipient's revert / a simulation's revert
        self.recipient_reverts: dict[bytes, str] = {}
        self.simulation_reverts: dict[bytes, str] = {}
        self.unreachable = False
        self._salt = 0
        self.blocks = [_Block(0, self._hash(0), tokens={self.token: {}})]

    @classmethod
    def open(cls, name: str, chain_id: int, **options: Any) -> FakeChain:
        """A new chain reachable at `fake://<name>` in this process (replacing one of that
        name)."""
        chain = cls(name, chain_id, **options)
        _CHAINS[chain.url] = chain
        return chain

    @property
    def url(self) -> str:
        return f"fake://{self.name}"

    def _hash(self, number: int) -> str:
        seed = f"{self.name}:{self.chain_id}:{number}:{self._salt}".encode()
        return "0x" + keccak(seed).hex()

    # -- acting on the chain (tests) ---------------------------------------------------

    @property
    def head(self) -> int:
        return self.blocks[-1].number

    def mine(self, count: int = 1) -> None:
        """`count` new blocks; the first includes every pending transaction."""
        for _ in range(count):
            block = self._new_block()
            for tx, body in list(self.pending.values()):
                self._execute(block, tx, body)
            self.pending.clear()

    def _new_block(self) -> _Block:
        number = self.head + 1
        tokens = {t: dict(b) for t, b in self.blocks[-1].tokens.items()}
        block = _Block(number, self._hash(number), tokens=tokens)
        self.blocks.append(block)
        return block

    def send_message(
        self, sender: str, dst_chain_id: int, recipient: str, payload: bytes, gas: int = 200_000
    ) -> ObservedMessage:
        """`Gateway.send` from `sender`, mined in a block of its own."""
        message = Message(
            src_chain_id=self.chain_id,
            src_gateway=self.gateway,
            dst_chain_id=dst_chain_id,
            nonce=self.outbound_nonce,
            sender=to_checksum_address(sender),
            recipient=to_checksum_address(recipient),
            gas_limit=gas,
            payload=payload,
        )
        self.outbound_nonce += 1
        self.nonces[sender] = self.nonces.get(sender, 0) + 1
        block = self._new_block()
        tx_hash = "0x" + keccak(message.id + block.hash.encode()).hex()
        observed = ObservedMessage(message, block.number, block.hash, tx_hash, 0)
        block.messages.append(observed)
        block.receipts.append(Receipt(tx_hash, block.number, block.hash, True, 1))
        return observed

    def mint(self, holder: str, amount: int, token: str | None = None) -> None:
        block = self._new_block()
        balances = block.tokens.setdefault(token or self.token, {})
        balances[holder.lower()] = balances.get(holder.lower(), 0) + amount

    def reorg(self, keep: int, blocks: int) -> None:
        """Replace every block after `keep` by `blocks` new ones (with other hashes)."""
        self._salt += 1
        del self.blocks[keep + 1 :]
        for _ in range(blocks):
            self._new_block()

    def fund(self, address: str, wei: int) -> None:
        self.balances[to_checksum_address(address)] = wei

    def block(self, number: int) -> _Block | None:
        return self.blocks[number] if 0 <= number <= self.head else None

    # -- the gateway and bridge ------------------------------------------------------

    def _execute(self, block: _Block, tx: SignedTx, body: dict[str, Any]) -> None:
        self.nonces[tx.sender] = self.nonces.get(tx.sender, 0) + 1
        kind = body["kind"]
        success = True
        if kind == "deliver":
            batch = [_signed_from(m) for m in body["batch"]]
            if tx.gas < _gas(len(batch)) or self.paused:
                success = False  # out of gas, or paused: the whole transaction reverts
            else:
                block.outcomes += [self._deliver_one(block, tx, s.message) for s in batch]
        elif kind == "return":
            message = _signed_from(body["transfer"]).message
            self.delivered.add(message.id)
            block.outcomes.append(
                DeliveryOutcome(message.id, DeliveryStatus.CONSUMED, tx.tx_hash, block.number)
            )
        elif kind == "rate_limit":
            limit = _limit_from(body["limit"])
            self.limits[(limit.remote_chain_id, limit.token.lower(), limit.outbound)] = limit
        block.receipts.append(Receipt(tx.tx_hash, block.number, block.hash, success))

    def _deliver_one(self, block: _Block, tx: SignedTx, message: Message) -> DeliveryOutcome:
        if message.id in self.delivered:
            return DeliveryOutcome(message.id, DeliveryStatus.SKIPPED, tx.tx_hash, block.number)
        if message.id in self.recipient_reverts:
            reason = self.recipient_reverts[message.id]
            return DeliveryOutcome(
                message.id, DeliveryStatus.FAILED, tx.tx_hash, block.number, reason
            )
        self.delivered.add(message.id)
        return DeliveryOutcome(message.id, DeliveryStatus.DELIVERED, tx.tx_hash, block.number)

    def simulate(self, batch: Sequence[SignedMessage]) -> int:
        for signed in batch:
            message = signed.message
            if self.paused:
                raise SimulationError(f"{self.gateway}: delivery reverts", "EnforcedPause()")
            if message.dst_chain_id != self.chain_id:
                raise SimulationError(f"{self.gateway}: wrong chain", "WrongDestination()")
            if len(signed.signatures) < self.threshold:
                reason = f"InsufficientSignatures({len(signed.signatures)}, {self.threshold})"
                raise SimulationError(
                    f"{self.gateway}: {len(batch)} message(s) revert {reason}", reason
                )
            if message.id in self.simulation_reverts:
                reason = self.simulation_reverts[message.id]
                raise SimulationError(f"{self.gateway}: reverts {reason}", reason)
        return _gas(len(batch))


def _gas(messages: int) -> int:
    return GAS_PER_TX + GAS_PER_MESSAGE * messages


# -- transactions as bytes: JSON, so a test can read them; never the key ----------------


def _message_doc(message: Message) -> dict[str, Any]:
    return {
        "src_chain_id": message.src_chain_id,
        "src_gateway": message.src_gateway,
        "dst_chain_id": message.dst_chain_id,
        "nonce": message.nonce,
        "sender": message.sender,
        "recipient": message.recipient,
        "gas_limit": message.gas_limit,
        "payload": message.payload.hex(),
        "version": message.version,
    }


def _signed_doc(signed: SignedMessage) -> dict[str, Any]:
    return {
        "message": _message_doc(signed.message),
        "signatures": [s.hex() for s in signed.signatures],
    }


def _signed_from(doc: dict[str, Any]) -> SignedMessage:
    fields = dict(doc["message"])
    fields["payload"] = bytes.fromhex(fields["payload"])
    return SignedMessage(Message(**fields), tuple(bytes.fromhex(s) for s in doc["signatures"]))


def _limit_from(doc: dict[str, Any]) -> RateLimit:
    return RateLimit(**doc)


def _sign(
    chain_id: int, key: str, nonce: int, fee: FeeQuote, gas: int, body: dict[str, Any]
) -> SignedTx:
    try:
        sender = str(Account.from_key(key).address)
    except Exception:  # the error would quote the key
        raise ValueError("not a private key") from None
    doc = {"chain_id": chain_id, "sender": sender, "nonce": nonce, "gas": gas, **body}
    doc["fee"] = [fee.max_fee_per_gas, fee.max_priority_fee_per_gas]
    raw = json.dumps(doc, sort_keys=True).encode()
    return SignedTx("0x" + keccak(raw).hex(), raw, sender, nonce, fee, gas)


class FakeAdapter:
    """A chain adapter on in-memory chains (`fake://<name>`), failing over between its URLs
    like a real one: a URL no chain of this process answers to is a dead endpoint."""

    family = FAMILY

    def __init__(
        self,
        rpc_urls: Sequence[str],
        timeout: float = 5.0,
        shown_urls: Sequence[str] | None = None,
        address_guard: object = None,
        quorum: int = 1,
    ) -> None:
        self.rpc_urls = list(shown_urls or rpc_urls)
        self._urls = list(rpc_urls)

    def __repr__(self) -> str:
        return f"FakeAdapter({self.rpc_urls})"

    @property
    def chain(self) -> FakeChain:
        for url in self._urls:
            found = _CHAINS.get(url)
            if found is not None and not found.unreachable:
                return found
        raise EndpointUnavailableError(f"no endpoint answered: {', '.join(self.rpc_urls)}")

    # -- ChainReader -------------------------------------------------------------------

    def chain_id(self) -> int:
        return self.chain.chain_id

    def normalize_address(self, address: str) -> str:
        if not is_address(address):
            raise ValueError(f"{address!r} is not an address")
        return str(to_checksum_address(address))

    def probe_endpoints(self) -> list[EndpointReport]:
        reports = []
        for url, shown in zip(self._urls, self.rpc_urls, strict=True):
            found = _CHAINS.get(url)
            if found is None:
                reports.append(EndpointReport(shown, None, "no chain answers"))
            else:
                reports.append(EndpointReport(shown, found.chain_id))
        return reports

    def head(self) -> BlockRef:
        chain = self.chain
        return BlockRef(chain.head, chain.blocks[-1].hash)

    def finalized_block(self, policy: FinalityPolicy) -> BlockRef:
        chain = self.chain
        depth = policy.depth if policy.kind is FinalityKind.DEPTH else 0
        block = chain.blocks[max(0, chain.head - depth)]
        return BlockRef(block.number, block.hash)

    def block_hash(self, number: int) -> str | None:
        block = self.chain.block(number)
        return None if block is None else block.hash

    def receipt(self, tx_hash: str) -> Receipt | None:
        for block in self.chain.blocks:
            for receipt in block.receipts:
                if receipt.tx_hash == tx_hash:
                    return receipt
        return None

    def code_at(self, address: str) -> bytes:
        chain = self.chain
        known = {chain.gateway.lower(), chain.bridge.lower(), chain.token.lower()}
        return b"\x60\x00" if address.lower() in known else b""

    def contract_chain_id(self, address: str) -> int:
        chain = self.chain
        if not self.code_at(address):
            raise AdapterError(f"no contract code at {address}")
        if address.lower() not in (chain.gateway.lower(), chain.bridge.lower()):
            raise AdapterError(f"{address} has no chainId()")
        return chain.chain_id

    def _tokens(self, block: int | None) -> dict[str, dict[str, int]]:
        chain = self.chain
        found = chain.block(chain.head if block is None else block)
        if found is None:
            raise AdapterError(f"no block {block}")
        return found.tokens

    def token_balance(self, token: str, holder: str, block: int | None = None) -> int:
        return self._tokens(block).get(token, {}).get(holder.lower(), 0)

    def token_supply(self, token: str, block: int | None = None) -> int:
        return sum(self._tokens(block).get(token, {}).values())

    # -- OutboxReader, InboxReader ----------------------------------------------------

    def _range(self, from_block: int, to_block: int) -> list[_Block]:
        chain = self.chain
        return [b for b in chain.blocks[max(0, from_block) : to_block + 1]]

    def messages(self, gateway: str, from_block: int, to_block: int) -> list[ObservedMessage]:
        return [m for b in self._range(from_block, to_block) for m in b.messages]

    def gateway_config(self, gateway: str) -> GatewayConfig:
        c = self.chain
        return GatewayConfig(
            c.gateway, c.chain_id, c.epoch, c.threshold, c.validators, c.paused, c.outbound_nonce
        )

    def is_delivered(self, gateway: str, message_id: bytes) -> bool:
        return message_id in self.chain.delivered

    def delivery_outcomes(
        self, gateway: str, from_block: int, to_block: int
    ) -> list[DeliveryOutcome]:
        return [o for b in self._range(from_block, to_block) for o in b.outcomes]

    # -- Submitter, Deliverer ---------------------------------------------------------

    def simulate_delivery(self, gateway: str, batch: Sequence[SignedMessage], sender: str) -> int:
        return self.chain.simulate(batch)

    def sign_delivery(
        self,
        gateway: str,
        batch: Sequence[SignedMessage],
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        body = {"kind": "deliver", "to": gateway, "batch": [_signed_doc(s) for s in batch]}
        return _sign(self.chain.chain_id, private_key, nonce, fee, gas, body)

    def send_raw(self, raw: bytes) -> str:
        chain = self.chain
        try:
            doc = json.loads(raw)
            tx = SignedTx(
                "0x" + keccak(raw).hex(),
                raw,
                doc["sender"],
                doc["nonce"],
                FeeQuote(*doc["fee"]),
                doc["gas"],
            )
        except (ValueError, KeyError, TypeError):
            raise AdapterError("the node refused the transaction: not one it can decode") from None
        if tx.tx_hash in chain.pending or self.receipt(tx.tx_hash) is not None:
            return tx.tx_hash
        if tx.nonce < chain.nonces.get(tx.sender, 0):
            raise NonceTooLowError(f"nonce {tx.nonce} of {tx.sender} is used")
        chain.pending[tx.tx_hash] = (tx, doc)
        if chain.automine:
            chain.mine(1)
        return tx.tx_hash

    def account_nonce(self, address: str, pending: bool = False) -> int:
        chain = self.chain
        mined = chain.nonces.get(address, 0)
        if not pending:
            return mined
        return mined + sum(1 for tx, _ in chain.pending.values() if tx.sender == address)

    def fee_quote(self) -> FeeQuote:
        self.chain  # noqa: B018 - an unreachable chain gives no quote
        return FEE

    def native_balance(self, address: str) -> int:
        return self.chain.balances.get(to_checksum_address(address), 0)

    # -- BridgeOperator ----------------------------------------------------------------

    def rate_limit(
        self, bridge: str, remote_chain_id: int, token: str, outbound: bool
    ) -> RateLimitState:
        limit = self.chain.limits.get((remote_chain_id, token.lower(), outbound))
        if limit is None:
            limit = RateLimit(
                remote_chain_id=remote_chain_id,
                token=token,
                outbound=outbound,
                capacity=0,
                refill_per_second=0,
            )
        return RateLimitState(limit, limit.capacity if limit.limited else NO_RATE_LIMIT)

    def returns(self, bridge: str, from_block: int, to_block: int) -> list[ReturnedTransfer]:
        return [r for b in self._range(from_block, to_block) for r in b.returns]

    def bridge_paused(self, bridge: str) -> bool:
        return self.chain.paused

    def token_decimals(self, token: str) -> int:
        return 18

    def simulate_set_rate_limit(self, bridge: str, limit: RateLimit, sender: str) -> int:
        self.chain  # noqa: B018 - an unreachable chain simulates nothing
        return 60_000

    def sign_set_rate_limit(
        self, bridge: str, limit: RateLimit, private_key: str, nonce: int, fee: FeeQuote, gas: int
    ) -> SignedTx:
        doc = {
            "remote_chain_id": limit.remote_chain_id,
            "token": limit.token,
            "outbound": limit.outbound,
            "capacity": limit.capacity,
            "refill_per_second": limit.refill_per_second,
        }
        body = {"kind": "rate_limit", "to": bridge, "limit": doc}
        return _sign(self.chain.chain_id, private_key, nonce, fee, gas, body)

    def simulate_return_to_sender(self, bridge: str, transfer: SignedMessage, sender: str) -> int:
        if transfer.message.id in self.chain.delivered:
            raise SimulationError(f"{bridge}: returnToSender reverts", "AlreadyDelivered()")
        return 120_000

    def sign_return_to_sender(
        self,
        bridge: str,
        transfer: SignedMessage,
        private_key: str,
        nonce: int,
        fee: FeeQuote,
        gas: int,
    ) -> SignedTx:
        body = {"kind": "return", "to": bridge, "transfer": _signed_doc(transfer)}
        return _sign(self.chain.chain_id, private_key, nonce, fee, gas, body)
