"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from adapters.base import FinalityPolicy
from hub.db.models import Asset, Chain, Route
from hub.services.netpolicy import redact_url

ChainName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", examples=["alpha"])]
Finality = StrictInt | str
MAX_CHAIN_ID = 2**63 - 1


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


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

    @classmethod
    def of(cls, chain: Chain, live: LiveOut | None = None) -> ChainOut:
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
        )


class RouteCreate(Input):
    src: ChainName
    dst: ChainName


class RoutePatch(Input):
    paused: bool
    reason: str | None = Field(default=None, max_length=500)


class RouteOut(BaseModel):
    id: int
    src: str
    dst: str
    status: str
    status_reason: str | None
    status_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, route: Route) -> RouteOut:
        return cls(
            id=route.id,
            src=route.src.name,
            dst=route.dst.name,
            status=route.status,
            status_reason=route.status_reason,
            status_by=route.status_by,
            created_at=route.created_at,
        )


class AssetCreate(Input):
    symbol: str = Field(min_length=1, max_length=32)
    home_chain: ChainName
    home_token: str = Field(min_length=1, max_length=128)
    deployments: dict[ChainName, Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=dict, description="chain name to wrapped token address"
    )


class SupplyOut(BaseModel):
    locked_at_home: str | None = Field(description="base units, as a decimal string")
    wrapped: dict[str, str | None]
    in_flight: str
    balanced: bool | None
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
