"""Bodies of what operators and users look at: the hub at a glance, search, the feed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from hub.api.schemas import MessageOut
from hub.db.models import Message, MessageEvent
from hub.services import overview as svc


class ChainSummaryOut(BaseModel):
    name: str
    chain_id: int
    family: str
    status: str
    status_reason: str | None
    reachable: bool
    head: int | None = Field(description="the head the chain reports now")
    finalized: int | None = Field(description="its final block by the chain's policy")
    finality_lag: int | None = Field(description="head minus finalized")
    cursor_block: int | None = Field(description="the hub read the gateway's logs up to here")
    cursor_lag: int | None = Field(description="head minus cursor")
    error: str | None = None

    @classmethod
    def of(cls, view: svc.ChainView) -> ChainSummaryOut:
        chain, live, cursor = view.chain, view.live, view.cursor
        head = live.head
        return cls(
            name=chain.name,
            chain_id=chain.chain_id,
            family=chain.family,
            status=chain.status,
            status_reason=chain.status_reason,
            reachable=live.reachable,
            head=head,
            finalized=live.finalized,
            finality_lag=_minus(head, live.finalized),
            cursor_block=cursor.block_number if cursor else None,
            cursor_lag=_minus(head, cursor.block_number if cursor else None),
            error=live.error,
        )


def _minus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(0, a - b)


class RouteSummaryOut(BaseModel):
    id: int
    src: str
    dst: str
    status: str
    status_reason: str | None
    max_gas: int
    delivered_recently: int = Field(description="messages delivered in the throughput window")
    in_flight: int = Field(description="messages on the route not delivered yet")

    @classmethod
    def of(cls, view: svc.RouteView) -> RouteSummaryOut:
        r = view.route
        return cls(
            id=r.id,
            src=r.src.name,
            dst=r.dst.name,
            status=r.status,
            status_reason=r.status_reason,
            max_gas=r.max_gas,
            delivered_recently=view.delivered_recently,
            in_flight=view.in_flight,
        )


class AssetSummaryOut(BaseModel):
    symbol: str
    home_chain: str
    status: str
    status_reason: str | None
    chains: list[str] = Field(description="its home chain, then the chains it is wrapped on")


class StatusOut(BaseModel):
    """The hub at a glance: what `islands status` prints and the dashboard's map draws."""

    at: datetime
    chains: list[ChainSummaryOut]
    routes: list[RouteSummaryOut]
    assets: list[AssetSummaryOut]
    backlog: dict[str, int] = Field(description="messages per state")
    open_alerts: int
    throughput_window_seconds: int

    @classmethod
    def of(cls, found: svc.Overview) -> StatusOut:
        return cls(
            at=found.at,
            chains=[ChainSummaryOut.of(c) for c in found.chains],
            routes=[RouteSummaryOut.of(r) for r in found.routes],
            assets=[
                AssetSummaryOut(
                    symbol=a.symbol,
                    home_chain=a.home_chain.name,
                    status=a.status,
                    status_reason=a.status_reason,
                    chains=[a.home_chain.name, *(d.chain.name for d in a.deployments)],
                )
                for a in found.assets
            ],
            backlog=found.backlog,
            open_alerts=found.open_alerts,
            throughput_window_seconds=int(svc.THROUGHPUT_WINDOW.total_seconds()),
        )


class SearchOut(BaseModel):
    query: str
    kind: str = Field(description="message, transaction, address, or nothing")
    messages: list[MessageOut]


class FeedEventOut(BaseModel):
    """One message entering one state: a line of the live feed (`GET /v1/feed`)."""

    event_id: int
    message_id: str
    state: str
    at: datetime
    detail: str | None
    src_chain: str | None
    dst_chain: str | None
    src_tx_hash: str
    dst_tx_hash: str | None
    sender: str = Field(description="a transfer's from, else the message's sender")
    recipient: str = Field(description="a transfer's to, else the message's recipient")
    asset: str | None = None
    amount: str | None = Field(default=None, description="base units, for a transfer")

    @classmethod
    def of(cls, entry: MessageEvent, m: Message, names: dict[int, str]) -> FeedEventOut:
        transfer = m.transfer
        return cls(
            event_id=entry.id,
            message_id=m.id,
            state=entry.state,
            at=entry.at,
            detail=entry.detail,
            src_chain=names.get(m.src_chain_id),
            dst_chain=names.get(m.dst_chain_id),
            src_tx_hash=m.src_tx_hash,
            dst_tx_hash=m.dst_tx_hash,
            sender=transfer.sender if transfer else m.sender,
            recipient=transfer.recipient if transfer else m.recipient,
            asset=transfer.asset.symbol if transfer and transfer.asset else None,
            amount=transfer.amount if transfer else None,
        )
