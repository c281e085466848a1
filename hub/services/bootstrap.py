"""Register a devnet's chains, routes between every pair, and its test asset, idempotently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import FinalityPolicy
from hub.db.models import Asset, Chain
from hub.services import assets, chains, routes
from hub.services.netpolicy import NetworkPolicy


def register_devnet(
    session: Session, devnet: dict[str, Any], actor: str, policy: NetworkPolicy, timeout: float
) -> list[str]:
    """Register what a devnet.json describes; what exists already (by name) is left alone.
    Returns the names of the chains registered by this call."""
    added = []
    for entry in devnet["chains"]:
        if session.scalar(select(Chain.id).where(Chain.name == entry["name"])) is not None:
            continue
        spec = chains.ChainSpec(
            name=entry["name"],
            chain_id=int(entry["chain_id"]),
            family="evm",
            rpc_urls=list(entry.get("rpc_urls") or [entry["rpc_url"]]),
            finality=FinalityPolicy.parse(entry.get("finality", 2)),
            gateway_address=entry["gateway"],
            bridge_address=entry["bridge"],
        )
        chains.register_chain(session, spec, actor, policy, timeout)
        added.append(entry["name"])
    routes.connect_all(session, [c["name"] for c in devnet["chains"]], actor)
    asset = devnet.get("asset")
    if asset and session.scalar(select(Asset.id).where(Asset.symbol == asset["symbol"])) is None:
        spec_a = assets.AssetSpec(
            asset["symbol"], asset["home_chain"], asset["home_token"], dict(asset["deployments"])
        )
        assets.register_asset(session, spec_a, actor, timeout, policy)
    return added
