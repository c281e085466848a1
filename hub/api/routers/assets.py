"""/v1/assets: tokens at home and their wrapped deployments, with their supply."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hub.api.deps import AdminDep, OperatorDep, PolicyDep, SessionDep, SettingsDep, commit
from hub.api.errors import BODY, WRITE, refusals
from hub.api.schemas import AssetCreate, AssetOut, AssetPatch, DeploymentCreate, JoinOut, SupplyOut
from hub.domain.errors import CheckFailedError
from hub.services import assets as svc
from hub.services import joining
from hub.services.chains import chain_adapter
from hub.services.relay.supply import check_asset

router = APIRouter(prefix="/v1/assets", tags=["assets"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetOut,
    responses=refusals(*WRITE, BODY),
)
def register_asset(
    body: AssetCreate,
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    principal: AdminDep,
) -> AssetOut:
    spec = svc.AssetSpec(body.symbol, body.home_chain, body.home_token, dict(body.deployments))
    asset = svc.register_asset(session, spec, principal.actor, settings.rpc_timeout, policy)
    commit(session)
    return AssetOut.of(asset)


@router.post(
    "/{symbol}/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=JoinOut,
    responses={
        200: {"model": JoinOut, "description": "The chain had joined already: nothing to do"},
        **refusals(404, *WRITE, BODY, 502),
    },
)
def join_chain(
    symbol: str,
    body: DeploymentCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    principal: AdminDep,
) -> JoinOut:
    """Join a registered chain to the asset in one step: its bridge creates the wrapped token
    (with the hub's deployer key, HUB_DEPLOYER_KEY), the bridges of every chain of the asset
    trust each other, routes are added and the deployment is recorded. Each step reads the
    chain first, so calling it again after a failure (502) finishes the job and never creates
    a second token."""
    if settings.deployer_key is None:
        raise CheckFailedError(
            "the hub has no deployer key: set HUB_DEPLOYER_KEY to the key that owns the "
            "chains' token bridges"
        )
    key = settings.deployer_key.get_secret_value()
    report = joining.join_asset(
        session,
        symbol,
        body.chain,
        key,
        principal.actor,
        lambda chain: chain_adapter(chain, settings.rpc_timeout, policy),
    )
    commit(session)
    if not report.recorded:
        response.status_code = status.HTTP_200_OK
    return JoinOut.of(report)


@router.get("", response_model=list[AssetOut])
def list_assets(session: SessionDep) -> list[AssetOut]:
    return [AssetOut.of(a) for a in svc.list_assets(session)]


@router.get("/{symbol}", response_model=AssetOut, responses=refusals(404, 422))
def get_asset(
    symbol: str, session: SessionDep, settings: SettingsDep, policy: PolicyDep
) -> AssetOut:
    """The asset with its supply: locked at home, wrapped on each chain, in flight, each chain
    read at the block up to which the hub has recorded every transfer (`as_of`)."""
    asset = svc.get_asset(session, symbol)
    check = check_asset(session, asset, lambda c: chain_adapter(c, settings.rpc_timeout, policy))
    supply = SupplyOut(
        locked_at_home=_text(check.locked),
        wrapped={k: _text(v) for k, v in check.wrapped.items()},
        in_flight=str(check.in_flight),
        balanced=check.balanced,
        surplus=None if check.balanced is None else str(check.surplus),
        as_of=check.as_of,
        errors=check.errors,
    )
    return AssetOut.of(asset, supply)


@router.patch("/{symbol}", response_model=AssetOut, responses=refusals(404, *WRITE, BODY))
def update_asset(
    symbol: str, body: AssetPatch, session: SessionDep, principal: OperatorDep
) -> AssetOut:
    """Pause an asset (its transfers wait) or resume it after a supply mismatch is explained."""
    asset = svc.set_asset_paused(
        session, svc.get_asset(session, symbol), body.paused, principal.actor, body.reason
    )
    commit(session)
    return AssetOut.of(asset)


def _text(value: int | None) -> str | None:
    # Token amounts exceed JSON's safe integers; decimal strings keep them exact.
    return None if value is None else str(value)
