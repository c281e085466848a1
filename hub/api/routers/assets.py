"""/v1/assets: tokens at home and their wrapped deployments, with live supply."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.api.deps import AdminDep, SessionDep, SettingsDep, commit
from hub.api.schemas import AssetCreate, AssetOut, SupplyOut
from hub.services import assets as svc

router = APIRouter(prefix="/v1/assets", tags=["assets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AssetOut)
def register_asset(
    body: AssetCreate, session: SessionDep, settings: SettingsDep, principal: AdminDep
) -> AssetOut:
    spec = svc.AssetSpec(body.symbol, body.home_chain, body.home_token, dict(body.deployments))
    asset = svc.register_asset(session, spec, principal.actor, settings.rpc_timeout)
    commit(session)
    return AssetOut.of(asset)


@router.get("", response_model=list[AssetOut])
def list_assets(session: SessionDep) -> list[AssetOut]:
    return [AssetOut.of(a) for a in svc.list_assets(session)]


@router.get("/{symbol}", response_model=AssetOut)
def get_asset(symbol: str, session: SessionDep, settings: SettingsDep) -> AssetOut:
    """The asset with its supply read from the chains now."""
    asset = svc.get_asset(session, symbol)
    view = svc.read_supply(asset, in_flight=0, timeout=settings.rpc_timeout)
    supply = SupplyOut(
        locked_at_home=_text(view.locked_at_home),
        wrapped={k: _text(v) for k, v in view.wrapped.items()},
        in_flight=str(view.in_flight),
        balanced=view.balanced,
        errors=view.errors,
    )
    return AssetOut.of(asset, supply)


def _text(value: int | None) -> str | None:
    # Token amounts exceed JSON's safe integers; decimal strings keep them exact.
    return None if value is None else str(value)
