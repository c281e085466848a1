"""Assets: a token at home and its wrapped deployments on other chains."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import AdapterError, BridgeOperator
from hub.db.models import Asset, AssetDeployment, Chain
from hub.domain.errors import CheckFailedError, ConflictError, InvalidInputError, NotFoundError
from hub.domain.states import AssetStatus, ChainStatus
from hub.services import audit
from hub.services.chains import chain_adapter
from hub.services.netpolicy import NetworkPolicy

SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


@dataclass(frozen=True)
class AssetSpec:
    symbol: str
    home_chain: str
    home_token: str
    deployments: dict[str, str]


def _chain(session: Session, name: str, field: str) -> Chain:
    chain = session.scalar(select(Chain).where(Chain.name == name))
    if chain is None or chain.status == ChainStatus.RETIRED:
        state = "retired" if chain is not None else "unknown"
        raise InvalidInputError(f"{field}: {state} chain {name!r}", field=field)
    return chain


def _checked_token(
    chain: Chain, address: str, field: str, timeout: float, policy: NetworkPolicy
) -> str:
    """The token's canonical address, after checking a contract is there."""
    adapter = chain_adapter(chain, timeout, policy)
    try:
        token = adapter.normalize_address(address)
    except ValueError:
        raise InvalidInputError(f"{field}: {address!r} is not a valid address") from None
    try:
        code = adapter.code_at(token)
    except AdapterError as exc:
        raise CheckFailedError(f"{field}: could not reach chain {chain.name!r}: {exc}") from None
    if not code:
        raise CheckFailedError(f"{field}: no contract at {token} on chain {chain.name!r}")
    return token


def _decimals(chain: Chain, token: str, field: str, timeout: float, policy: NetworkPolicy) -> int:
    adapter = chain_adapter(chain, timeout, policy)
    if not isinstance(adapter, BridgeOperator):
        raise CheckFailedError(f"{field}: the {chain.family} adapter cannot read token decimals")
    try:
        return adapter.token_decimals(token)
    except AdapterError as exc:
        raise CheckFailedError(f"{field}: could not read decimals() of {token}: {exc}") from None


def _check_decimals(
    home: Chain,
    home_token: str,
    wrapped: dict[str, tuple[Chain, str]],
    timeout: float,
    policy: NetworkPolicy,
) -> None:
    """A wrapped token must count in the home token's units, or every amount is off by
    powers of ten."""
    expected = _decimals(home, home_token, "home_token", timeout, policy)
    for name, (chain, token) in wrapped.items():
        found = _decimals(chain, token, f"deployments.{name}", timeout, policy)
        if found != expected:
            raise CheckFailedError(
                f"deployments.{name}: {token} has {found} decimals, the home token {expected}",
                field=f"deployments.{name}",
            )


def register_asset(
    session: Session, spec: AssetSpec, actor: str, timeout: float, policy: NetworkPolicy
) -> Asset:
    if not SYMBOL.match(spec.symbol):
        raise InvalidInputError(f"symbol {spec.symbol!r} must be 1-32 letters, digits, . _ -")
    if session.scalar(select(Asset.id).where(Asset.symbol == spec.symbol)) is not None:
        raise ConflictError(f"an asset with symbol {spec.symbol!r} is already registered")
    home = _chain(session, spec.home_chain, "home_chain")
    if spec.home_chain in spec.deployments:
        raise InvalidInputError("deployments must not include the home chain")
    wrapped = {
        name: (chain, _checked_token(chain, addr, f"deployments.{name}", timeout, policy))
        for name, addr in spec.deployments.items()
        for chain in [_chain(session, name, f"deployments.{name}")]
    }
    home_token = _checked_token(home, spec.home_token, "home_token", timeout, policy)
    _check_decimals(home, home_token, wrapped, timeout, policy)
    asset = Asset(symbol=spec.symbol, home_chain=home, home_token=home_token)
    asset.status = AssetStatus.ACTIVE
    asset.deployments = [
        AssetDeployment(chain=chain, token_address=token) for chain, token in wrapped.values()
    ]
    session.add(asset)
    session.flush()
    audit.record(
        session,
        actor,
        "asset.register",
        f"asset:{spec.symbol}",
        home_chain=spec.home_chain,
        deployments=sorted(spec.deployments),
    )
    return asset


def list_assets(session: Session) -> list[Asset]:
    return list(session.scalars(select(Asset).order_by(Asset.id)))


def get_asset(session: Session, symbol: str) -> Asset:
    asset = session.scalar(select(Asset).where(Asset.symbol == symbol))
    if asset is None:
        raise NotFoundError(f"no asset with symbol {symbol!r}")
    return asset


def set_asset_paused(
    session: Session, asset: Asset, paused: bool, actor: str, reason: str | None
) -> Asset:
    asset.status = AssetStatus.PAUSED if paused else AssetStatus.ACTIVE
    asset.status_reason = reason if paused else None
    session.flush()
    action = "asset.pause" if paused else "asset.resume"
    audit.record(session, actor, action, f"asset:{asset.symbol}", reason=reason)
    return asset
