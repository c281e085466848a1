"""Joining a registered chain to an asset in one step: the wrapped token created by the
chain's bridge, the bridges of every chain of the asset registered as each other's remotes,
the routes added, the deployment recorded.

Every on-chain step reads the chain first and acts only on what is not done yet, so a join
that stopped halfway (a chain down, the deployer out of funds) is finished by running it
again, and never creates the wrapped token twice (the bridge refuses a second one anyway).
The database is written only once every chain agrees. The deployer key owns the bridges;
it comes from the hub's settings and is never stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import (
    AdapterError,
    BridgeAdmin,
    BridgeOperator,
    ChainAdapter,
    FeeQuote,
    SignedTx,
    WrappedTokenSpec,
)
from hub.db.models import Asset, AssetDeployment, Chain
from hub.domain.errors import ChainActionError, CheckFailedError, ConflictError
from hub.domain.states import ChainStatus
from hub.services import audit, routes
from hub.services.assets import get_asset
from hub.services.chains import get_chain

T = TypeVar("T")
Simulate = Callable[[str], int]  # sender -> gas
Sign = Callable[[int, FeeQuote, int], SignedTx]  # nonce, fee, gas -> signed transaction
AdapterOf = Callable[[Chain], ChainAdapter]  # an adapter under the hub's network policy
RECEIPT_TIMEOUT = 120.0
POLL_SECONDS = 0.2


@dataclass
class JoinReport:
    """What a join found done and what it did."""

    asset: str
    chain: str
    token: str = ""
    created_token: bool = False
    recorded: bool = False
    transactions: list[str] = field(default_factory=list)
    routes_added: list[int] = field(default_factory=list)


class _Owner:
    """The deployer key on one chain: reads the bridge, and sends and waits for the owner's
    transactions one at a time."""

    def __init__(self, chain: Chain, key: str, adapter_of: AdapterOf, report: JoinReport) -> None:
        adapter = adapter_of(chain)
        if not isinstance(adapter, BridgeAdmin):
            raise CheckFailedError(f"the {chain.family} adapter cannot administer token bridges")
        self.chain, self.key, self.report = chain, key, report
        self.adapter: ChainAdapter = adapter
        self.admin: BridgeAdmin = adapter
        self.address = str(Account.from_key(key).address)

    def read(self, what: str, read: Callable[[], T]) -> T:
        try:
            return read()
        except AdapterError as exc:
            raise self.stopped(what, exc) from None

    def transact(
        self,
        what: str,
        simulate: Callable[[str], int],
        sign: Callable[[int, FeeQuote, int], SignedTx],
    ) -> None:
        try:
            gas = simulate(self.address)
            nonce = self.adapter.account_nonce(self.address, pending=True)
            tx = sign(nonce, self.adapter.fee_quote(), gas)
            self.adapter.send_raw(tx.raw)
            self.report.transactions.append(tx.tx_hash)
            self._wait(tx.tx_hash)
        except AdapterError as exc:
            raise self.stopped(what, exc) from None

    def _wait(self, tx_hash: str) -> None:
        deadline = time.monotonic() + RECEIPT_TIMEOUT
        while (receipt := self.adapter.receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise AdapterError(f"{tx_hash} not mined within {RECEIPT_TIMEOUT:g}s")
            time.sleep(POLL_SECONDS)
        if not receipt.success:
            raise AdapterError(f"{tx_hash} reverted")

    def stopped(self, what: str, exc: AdapterError) -> ChainActionError:
        error = str(exc)  # adapters name only redacted URLs
        return ChainActionError(
            f"joining {self.report.chain!r} to {self.report.asset} stopped at {what} on "
            f"{self.chain.name!r}: {error}. The steps before it are done and stay done: run "
            "it again to finish",
            chain=self.chain.name,
            step=what,
        )


def join_asset(
    session: Session,
    symbol: str,
    chain_name: str,
    deployer_key: str,
    actor: str,
    adapter_of: AdapterOf,
) -> JoinReport:
    """Make `chain_name` a chain of asset `symbol` (see the module's docstring)."""
    asset, chain = get_asset(session, symbol), get_chain(session, chain_name)
    _check_joinable(asset, chain)
    report = JoinReport(asset=symbol, chain=chain_name)
    owners = {c.name: _Owner(c, deployer_key, adapter_of, report) for c in _chains_of(asset, chain)}
    decimals = _home_decimals(asset, owners[asset.home_chain.name])
    report.token = _ensure_wrapped(asset, owners[chain.name], decimals, report)
    _ensure_remotes(owners, chain)
    names = [chain.name, *(name for name in owners if name != chain.name)]
    report.routes_added = [r.id for r in routes.connect_all(session, names, actor)]
    report.recorded = _record(session, asset, chain, report.token)
    audit.record(
        session,
        actor,
        "asset.join",
        f"asset:{symbol}",
        chain=chain_name,
        token=report.token,
        transactions=report.transactions,
        routes_added=report.routes_added,
    )
    return report


def _check_joinable(asset: Asset, chain: Chain) -> None:
    if chain.status != ChainStatus.ACTIVE:
        raise ConflictError(f"chain {chain.name!r} is {chain.status}: it cannot join an asset")
    if chain.id == asset.home_chain_key:
        raise CheckFailedError(f"{chain.name!r} is the home chain of {asset.symbol}")
    others = [c for c in _chains_of(asset, chain) if c.id != chain.id]
    stopped = [c.name for c in others if c.status != ChainStatus.ACTIVE]
    if stopped:
        raise ConflictError(
            f"chain(s) {', '.join(stopped)} of {asset.symbol} are not active: resume them first"
        )


def _chains_of(asset: Asset, joining: Chain) -> list[Chain]:
    """The asset's home, its deployments, and the joining chain, each once."""
    found = {asset.home_chain.id: asset.home_chain}
    found.update({d.chain.id: d.chain for d in asset.deployments})
    found[joining.id] = joining
    return list(found.values())


def _ensure_wrapped(asset: Asset, owner: _Owner, decimals: int, report: JoinReport) -> str:
    """The joining chain's wrapped token of the asset, created if its bridge has none."""
    home, bridge = asset.home_chain, owner.chain.bridge_address
    what = f"wrappedToken({home.chain_id}, {asset.home_token})"
    read = owner.admin.wrapped_token
    existing = owner.read(what, lambda: read(bridge, home.chain_id, asset.home_token))
    if existing is not None:
        return existing
    spec = WrappedTokenSpec(
        home_chain_id=home.chain_id,
        home_token=asset.home_token,
        name=f"Wrapped {asset.symbol} ({home.name})",
        symbol=f"w{asset.symbol}",
        decimals=decimals,
    )
    owner.transact(
        f"createWrapped({home.chain_id}, {asset.home_token})",
        lambda sender: owner.admin.simulate_create_wrapped(bridge, spec, sender),
        lambda nonce, fee, gas: owner.admin.sign_create_wrapped(
            bridge, spec, owner.key, nonce, fee, gas
        ),
    )
    created = owner.read(what, lambda: read(bridge, home.chain_id, asset.home_token))
    if created is None:
        raise owner.stopped(what, AdapterError("the bridge reports no wrapped token after all"))
    report.created_token = True
    return created


def _home_decimals(asset: Asset, home: _Owner) -> int:
    """The wrapped token counts in the home token's units."""
    reader = home.adapter
    if not isinstance(reader, BridgeOperator):
        raise CheckFailedError(f"the {home.chain.family} adapter cannot read token decimals")
    what = f"decimals() of {asset.home_token}"
    return home.read(what, lambda: reader.token_decimals(asset.home_token))


def _ensure_remotes(owners: dict[str, _Owner], joining: Chain) -> None:
    """The joining chain's bridge trusts every other chain's bridge, then each of them trusts
    it. A bridge already trusting another address for the chain is left alone: a conflict."""
    new = owners[joining.name]
    others = [o for name, o in owners.items() if name != joining.name]
    for other in others:
        _ensure_remote(new, other.chain)
    for other in others:
        _ensure_remote(other, joining)


def _ensure_remote(owner: _Owner, remote: Chain) -> None:
    bridge, wanted = owner.chain.bridge_address, remote.bridge_address
    what = f"setRemoteBridge({remote.chain_id}, {wanted})"
    current = owner.read(
        f"remoteBridge({remote.chain_id})",
        lambda: owner.admin.remote_bridge(bridge, remote.chain_id),
    )
    if current is not None and current.lower() == wanted.lower():
        return
    if current is not None:
        raise ConflictError(
            f"the bridge on {owner.chain.name!r} trusts {current} for chain "
            f"{remote.chain_id}, not {remote.name!r}'s bridge {wanted}: change it by hand",
            chain=owner.chain.name,
        )
    owner.transact(
        what,
        lambda sender: owner.admin.simulate_set_remote_bridge(
            bridge, remote.chain_id, wanted, sender
        ),
        lambda nonce, fee, gas: owner.admin.sign_set_remote_bridge(
            bridge, remote.chain_id, wanted, owner.key, nonce, fee, gas
        ),
    )


def _record(session: Session, asset: Asset, chain: Chain, token: str) -> bool:
    """Record the deployment; False when it was recorded already (with this token)."""
    row = session.scalar(
        select(AssetDeployment).where(
            AssetDeployment.asset_id == asset.id, AssetDeployment.chain_key == chain.id
        )
    )
    if row is not None:
        if row.token_address.lower() != token.lower():
            raise ConflictError(
                f"{asset.symbol} is recorded on {chain.name!r} as {row.token_address}, but its "
                f"bridge's wrapped token is {token}"
            )
        return False
    asset.deployments.append(AssetDeployment(chain=chain, token_address=token))
    session.flush()
    return True
