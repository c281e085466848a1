"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from adapters.base import FinalityPolicy
from hub.db.models import Asset, Chain, Message, Route, RouteLimit, Transfer
from hub.services.joining import JoinReport
from hub.services.netpolicy import redact_url

ChainName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", examples=["alpha"])]
# What FinalityPolicy.parse accepts: a block depth (a number, or its digits) or a block tag.
Finality = (
    Annotated[StrictInt, Field(ge=0, le=10_000)]
    | Annotated[str, Field(pattern=r"^(safe|finalized|[0-9]{1,5})$")]
)
MAX_CHAIN_ID = 2**63 - 1


class Input(BaseModel):
    # Strict: a body is read as its schema says (0 is not false, "1" is not 1).
    model_config = ConfigDict(extra="forbid", strict=True)


def _finality(value: int | str | None) -> int | str | None:
    if value is None:
        return None
    return FinalityPolicy.parse(value).as_value()


class ChainCreate(Input):
    name: ChainName
    chain_id: StrictInt = Field(gt=0, le=MAX_CHAIN_ID)
    family: str = Field(default="evm", min_length=1, max_length=32)
    rpc_urls: list[Annotated[str, Field(min_length=1, max_length=2048)]] = Field(
        min_length=1, max_length=8
    )
    finality: Finality = Field(description="a block depth, or 'safe' / 'finalized'")
    gateway_address: str = Field(min_length=1, max_length=128)
    bridge_address: str = Field(min_length=1, max_length=128)

    _check_finality = field_validator("finality")(_finality)

    @field_validator("rpc_urls")
    @classmethod
    def _distinct(cls, urls: list[str]) -> list[str]:
        if len(set(urls)) != len(urls):
            raise ValueError("rpc_urls must not repeat a URL")
        return urls


class ChainPatch(Input):
    paused: bool | None = None
    reason: str | None = Field(default=None, max_length=500)
    rpc_urls: list[Annotated[str, Field(min_length=1, max_length=2048)]] | None = Field(
        default=None, min_length=1, max_length=8
    )
    finality: Finality | None = None

    _check_finality = field_validator("finality")(_finality)


class LiveOut(BaseModel):
    reachable: bool
    head: int | None = None
    finalized: int | None = None
    error: str | None = None


class RelayStateOut(BaseModel):
    """How far the hub has read the chain, and the validator set its gateway requires."""

    start_block: int = Field(description="the hub relays what the chain sent from here on")
    cursor_block: int = Field(description="gateway logs read up to here")
    settled_block: int = Field(description="every message at or below is final or orphaned")
    validator_epoch: int | None = None
    validator_threshold: int | None = None
    validators: list[str] = Field(default_factory=list)


class ChainOut(BaseModel):
    name: str
    chain_id: int
    family: str
    rpc_urls: list[str]
    finality: int | str
    gateway_address: str
    bridge_address: str
    status: str
    status_reason: str | None
    status_by: str | None
    created_at: datetime
    updated_at: datetime
    live: LiveOut | None = None
    relay: RelayStateOut | None = None

    @classmethod
    def of(
        cls, chain: Chain, live: LiveOut | None = None, relay: RelayStateOut | None = None
    ) -> ChainOut:
        return cls(
            name=chain.name,
            chain_id=chain.chain_id,
            family=chain.family,
            rpc_urls=[redact_url(u) for u in chain.rpc_urls],
            finality=FinalityPolicy.parse(chain.finality).as_value(),
            gateway_address=chain.gateway_address,
            bridge_address=chain.bridge_address,
            status=chain.status,
            status_reason=chain.status_reason,
            status_by=chain.status_by,
            created_at=chain.created_at,
            updated_at=chain.updated_at,
            live=live,
            relay=relay,
        )


class RouteCreate(Input):
    src: ChainName
    dst: ChainName


Amount = Annotated[str, Field(pattern=r"^[0-9]{1,40}$", description="base units, decimal")]


class LimitIn(Input):
    """A token bucket for one asset on a route: at most `capacity` at once, refilled by
    `refill_per_second`; capacity "0" removes the limit."""

    asset: str = Field(min_length=1, max_length=32)
    capacity: Amount
    refill_per_second: Amount


class RoutePatch(Input):
    paused: bool | None = Field(default=None, description="operators may pause and resume")
    reason: str | None = Field(default=None, max_length=500)
    max_gas: StrictInt | None = Field(
        default=None, ge=10_000, le=10_000_000, description="admin: gas cap per message"
    )
    limit: LimitIn | None = Field(default=None, description="admin: a rate limit for an asset")

    @model_validator(mode="after")
    def _something(self) -> RoutePatch:
        if self.paused is None and self.max_gas is None and self.limit is None:
            raise ValueError("nothing to change: give paused, max_gas or limit")
        return self


class BucketOut(BaseModel):
    """One bridge's bucket as the chain holds it now."""

    chain: str
    outbound: bool
    capacity: str
    refill_per_second: str
    available: str | None = Field(description="null when there is no limit")


class LimitOut(BaseModel):
    asset: str
    capacity: str
    refill_per_second: str
    set_by: str
    updated_at: datetime
    last_tx: str | None = Field(description="the guardian's last transaction applying it")
    last_error: str | None
    on_chain: list[BucketOut] | None = Field(
        default=None, description="both bridges' buckets, read live (one route only)"
    )
    in_sync: bool | None = Field(default=None, description="both bridges hold this limit")

    @classmethod
    def of(cls, row: RouteLimit, on_chain: list[BucketOut] | None = None) -> LimitOut:
        in_sync = None
        if on_chain is not None:
            in_sync = len(on_chain) == 2 and all(
                (b.capacity, b.refill_per_second) == (row.capacity, row.refill_per_second)
                for b in on_chain
            )
        return cls(
            asset=row.asset.symbol,
            capacity=row.capacity,
            refill_per_second=row.refill_per_second,
            set_by=row.set_by,
            updated_at=row.updated_at,
            last_tx=row.last_tx,
            last_error=row.last_error,
            on_chain=on_chain,
            in_sync=in_sync,
        )


class RouteOut(BaseModel):
    id: int
    src: str
    dst: str
    status: str
    status_reason: str | None
    status_by: str | None
    max_gas: int = Field(description="the most gas a message on this route may ask for")
    limits: list[LimitOut] = Field(default_factory=list)
    created_at: datetime

    @classmethod
    def of(cls, route: Route, limits: list[LimitOut] | None = None) -> RouteOut:
        return cls(
            id=route.id,
            src=route.src.name,
            dst=route.dst.name,
            status=route.status,
            status_reason=route.status_reason,
            status_by=route.status_by,
            max_gas=route.max_gas,
            limits=limits if limits is not None else [LimitOut.of(r) for r in route.limits],
            created_at=route.created_at,
        )


class AssetCreate(Input):
    symbol: str = Field(min_length=1, max_length=32)
    home_chain: ChainName
    home_token: str = Field(min_length=1, max_length=128)
    deployments: dict[ChainName, Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=dict, max_length=64, description="chain name to wrapped token address"
    )


class DeploymentCreate(Input):
    chain: ChainName = Field(description="a registered chain to join to the asset")


class JoinOut(BaseModel):
    """What joining a chain to an asset found done and did."""

    asset: str
    chain: str
    token: str = Field(description="the asset's wrapped token on the chain")
    created_token: bool = Field(description="whether this call created it")
    recorded: bool = Field(description="whether this call recorded the deployment")
    transactions: list[str] = Field(description="transactions this call sent, in order")
    routes_added: list[int] = Field(description="ids of the routes this call added")

    @classmethod
    def of(cls, report: JoinReport) -> JoinOut:
        return cls(
            asset=report.asset,
            chain=report.chain,
            token=report.token,
            created_token=report.created_token,
            recorded=report.recorded,
            transactions=report.transactions,
            routes_added=report.routes_added,
        )


class SupplyOut(BaseModel):
    locked_at_home: str | None = Field(description="base units, as a decimal string")
    wrapped: dict[str, str | None]
    in_flight: str
    balanced: bool | None
    surplus: str | None = Field(
        default=None,
        description="locked minus wrapped minus in flight: above 0 a surplus (an alert), "
        "below 0 a deficit (the asset pauses)",
    )
    as_of: dict[str, int] = Field(
        default_factory=dict, description="the block each chain was read at (its settled block)"
    )
    errors: dict[str, str] = Field(default_factory=dict)


class AssetOut(BaseModel):
    symbol: str
    home_chain: str
    home_token: str
    deployments: dict[str, str]
    status: str
    status_reason: str | None
    created_at: datetime
    supply: SupplyOut | None = None

    @classmethod
    def of(cls, asset: Asset, supply: SupplyOut | None = None) -> AssetOut:
        return cls(
            symbol=asset.symbol,
            home_chain=asset.home_chain.name,
            home_token=asset.home_token,
            deployments={d.chain.name: d.token_address for d in asset.deployments},
            status=asset.status,
            status_reason=asset.status_reason,
            created_at=asset.created_at,
            supply=supply,
        )


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    error: ErrorBody


class StepOut(BaseModel):
    state: str
    at: datetime
    detail: str | None


class AttestationOut(BaseModel):
    validator: str
    epoch: int
    signature: str | None = Field(
        description="withheld while the message's chain, route or asset is paused"
    )
    created_at: datetime


class RefusalOut(BaseModel):
    """A validator declined to sign (for now), and why."""

    validator: str
    reason: str
    count: int
    at: datetime
    retry_at: datetime


def timeline(message: Message) -> list[StepOut]:
    """Each state the message entered, with when and why."""
    return [StepOut(state=e.state, at=e.at, detail=e.detail) for e in message.events]


class TransferOut(BaseModel):
    message_id: str
    state: str
    asset: str | None
    amount: str = Field(description="base units, as a decimal string")
    sender: str
    recipient: str
    src_chain: str | None
    dst_chain: str | None
    src_chain_id: int
    dst_chain_id: int
    home_chain_id: int
    home_token: str
    src_tx_hash: str
    dst_tx_hash: str | None
    timeline: list[StepOut]
    returns: str | None = Field(
        default=None, description="this transfer gives back the transfer with this message id"
    )
    returned_in: str | None = Field(
        default=None, description="the message carrying this transfer's tokens back (returned)"
    )
    return_requested_by: str | None = None
    return_requested_at: datetime | None = None
    return_tx_hash: str | None = Field(default=None, description="the guardian's transaction")
    return_error: str | None = None

    @classmethod
    def of(
        cls, transfer: Transfer, names: dict[int, str], returned_in: str | None = None
    ) -> TransferOut:
        m = transfer.message
        return cls(
            message_id=m.id,
            state=m.state,
            asset=transfer.asset.symbol if transfer.asset else None,
            amount=transfer.amount,
            sender=transfer.sender,
            recipient=transfer.recipient,
            src_chain=names.get(m.src_chain_id),
            dst_chain=names.get(m.dst_chain_id),
            src_chain_id=m.src_chain_id,
            dst_chain_id=m.dst_chain_id,
            home_chain_id=transfer.home_chain_id,
            home_token=transfer.home_token,
            src_tx_hash=m.src_tx_hash,
            dst_tx_hash=m.dst_tx_hash if m.state == "delivered" else None,
            timeline=timeline(m),
            returns=transfer.returns_message_id,
            returned_in=returned_in,
            return_requested_by=transfer.return_requested_by,
            return_requested_at=transfer.return_requested_at,
            return_tx_hash=transfer.return_tx_hash,
            return_error=transfer.return_error,
        )


class MessageOut(BaseModel):
    id: str
    state: str
    version: int
    src_chain: str | None
    dst_chain: str | None
    src_chain_id: int
    src_gateway: str = Field(description="the gateway that emitted it (part of the id)")
    dst_chain_id: int
    nonce: int
    sender: str
    recipient: str
    gas_limit: int = Field(description="gas the destination gateway forwards to the recipient")
    payload: str
    src_tx_hash: str
    src_block_number: int
    src_block_hash: str
    src_log_index: int
    dst_tx_hash: str | None = Field(description="the delivery transaction (the last one tried)")
    dst_block_number: int | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    timeline: list[StepOut]
    attestations: list[AttestationOut]
    refusals: list[RefusalOut] = Field(default_factory=list)
    paused: str | None = Field(
        default=None, description="why the message may not move now (a pause), if it may not"
    )
    transfer: TransferOut | None = None

    @classmethod
    def of(cls, m: Message, names: dict[int, str], paused: str | None = None) -> MessageOut:
        """`paused`: the reason the message may not move; its signatures are then withheld,
        so that nobody can deliver it on a paused route with what the hub publishes."""
        return cls(
            id=m.id,
            state=m.state,
            version=m.version,
            src_chain=names.get(m.src_chain_id),
            dst_chain=names.get(m.dst_chain_id),
            src_chain_id=m.src_chain_id,
            src_gateway=m.src_gateway,
            dst_chain_id=m.dst_chain_id,
            nonce=m.nonce,
            sender=m.sender,
            recipient=m.recipient,
            gas_limit=m.gas_limit,
            payload="0x" + m.payload.hex(),
            src_tx_hash=m.src_tx_hash,
            src_block_number=m.src_block_number,
            src_block_hash=m.src_block_hash,
            src_log_index=m.src_log_index,
            dst_tx_hash=m.dst_tx_hash,
            dst_block_number=m.dst_block_number,
            attempts=m.attempts,
            next_attempt_at=m.next_attempt_at,
            last_error=m.last_error,
            created_at=m.created_at,
            updated_at=m.updated_at,
            timeline=timeline(m),
            attestations=[
                AttestationOut(
                    validator=a.validator,
                    epoch=a.epoch,
                    signature=None if paused else a.signature,
                    created_at=a.created_at,
                )
                for a in m.attestations
            ],
            refusals=[
                RefusalOut(
                    validator=r.validator,
                    reason=r.reason,
                    count=r.count,
                    at=r.at,
                    retry_at=r.retry_at,
                )
                for r in m.refusals
            ],
            paused=paused,
            transfer=TransferOut.of(m.transfer, names) if m.transfer else None,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class AttestationIn(Input):
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes, 0x-hex")


class AttestationAccepted(BaseModel):
    message_id: str
    signer: str
    state: str


class AssetPatch(Input):
    paused: bool
    reason: str | None = Field(default=None, max_length=500)


class AlertOut(BaseModel):
    id: int
    kind: str
    subject: str
    message: str
    at: datetime


class Alive(BaseModel):
    """/healthz: the process is up."""

    status: str


class CheckOut(BaseModel):
    ok: bool
    head: int | None = None
    error: str | None = None


class ReadyOut(BaseModel):
    status: str = Field(description="ready, or not ready")
    database: CheckOut
    chains: dict[str, CheckOut]
