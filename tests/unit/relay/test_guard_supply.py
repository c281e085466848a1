"""Guardian: the bridges come to hold the rate limits admins set, and a failed transfer an
operator asked back is returned. Supply watch: a deficit pauses the asset and its routes, a
surplus only alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.fake import FakeAdapter
from hub.db.models import Alert, Asset, AssetDeployment, Chain, Message, Route, RouteLimit, Transfer
from hub.services.relay.guardian import GuardianReport
from hub.services.relay.retry import request_return
from hub.services.relay.supply import SupplyCheck
from tests.unit.relay.conftest import USER, World


def _chain(session: Session, name: str) -> Chain:
    found = session.scalar(select(Chain).where(Chain.name == name))
    assert found is not None
    return found


def _asset(world: World) -> None:
    """ITT: home on alpha (alpha's token), wrapped on beta (beta's token)."""
    with world.session() as session, session.begin():
        alpha, beta = _chain(session, "alpha"), _chain(session, "beta")
        asset = Asset(symbol="ITT", home_chain=alpha, home_token=world.alpha.token)
        asset.deployments.append(AssetDeployment(chain=beta, token_address=world.beta.token))
        session.add(asset)


def test_the_bridges_come_to_hold_the_limits_admins_set(world: World) -> None:
    _asset(world)
    with world.session() as session, session.begin():
        route = session.scalar(
            select(Route).where(Route.src_chain_key == _chain(session, "alpha").id)
        )
        asset = session.scalar(select(Asset))
        assert route is not None and asset is not None
        session.add(
            RouteLimit(
                route_id=route.id,
                asset_id=asset.id,
                capacity="1000",
                refill_per_second="10",
                set_by="admin",
            )
        )
    report: GuardianReport = world.run("guardian", "alpha")
    assert report.limits_sent == 1
    held = world.alpha.limits[(world.beta.chain_id, world.alpha.token.lower(), True)]
    assert (held.capacity, held.refill_per_second) == (1000, 10)
    assert world.run("guardian", "beta").limits_sent == 1  # inbound, on the wrapped token
    assert world.run("guardian", "alpha").limits_sent == 0  # held already: nothing to do
    with world.session() as session:
        row = session.scalar(select(RouteLimit))
        assert row is not None and row.last_tx is not None and row.last_error is None


def test_a_failed_transfer_asked_back_is_returned(world: World) -> None:
    message_id = world.attested(b"transfer")
    world.beta.recipient_reverts[bytes.fromhex(message_id[2:])] = "NoWrappedToken()"
    with world.session() as session, session.begin():
        session.add(
            Transfer(
                message_id=message_id,
                home_chain_id=world.alpha.chain_id,
                home_token=world.alpha.token,
                sender=USER.address,
                recipient=USER.address,
                amount="5",
            )
        )
    world.run("deliver", "beta")
    world.run("confirm", "beta")
    with world.session() as session, session.begin():
        message = session.get(Message, message_id)
        assert message is not None and message.state == "failed"
        request_return(session, message, "ops")
    report: GuardianReport = world.run("guardian", "beta")
    assert report.returns_sent == 1
    assert world.run("scan", "beta").delivered == 1  # the gateway's MessageConsumed
    assert world.message(message_id).state == "returned"
    assert world.run("guardian", "beta").returns_sent == 0


def _supply(world: World) -> SupplyCheck:
    check: SupplyCheck = world.run("supply", "ITT")
    return check


def test_a_balanced_asset_stays_active(world: World) -> None:
    _asset(world)
    check = _supply(world)
    assert (check.balanced, check.surplus, check.locked, check.wrapped) == (True, 0, 0, {"beta": 0})


def test_wrapped_tokens_without_backing_pause_the_asset_and_its_routes(world: World) -> None:
    _asset(world)
    world.beta.mint(USER.address, 100)  # wrapped tokens nobody locked
    world.run("scan", "beta")  # the supply is read at the block the hub has seen
    check = _supply(world)
    assert (check.balanced, check.surplus) == (False, -100)
    with world.session() as session:
        asset = session.scalar(select(Asset))
        assert asset is not None and asset.status == "paused"
        assert "100 without backing" in (asset.status_reason or "")
        routes = list(session.scalars(select(Route)))
        assert {(r.status, r.status_by) for r in routes} == {("paused", "supply-watch")}
        assert [a.kind for a in session.scalars(select(Alert))] == ["supply_mismatch"]


def test_a_node_misreading_a_supply_once_pauses_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node answering one read with a later block's state (anvil does while it mines) shows a
    deficit that a second read does not: the asset and its routes stay active."""
    _asset(world)
    world.run("scan", "beta")
    truth, answers = FakeAdapter.token_supply, iter([100])

    def once_wrong(self: FakeAdapter, token: str, block: int | None = None) -> int:
        return next(answers, 0) + truth(self, token, block)

    monkeypatch.setattr(FakeAdapter, "token_supply", once_wrong)
    assert _supply(world).balanced is True  # the first check's deficit was not confirmed
    with world.session() as session:
        asset = session.scalar(select(Asset))
        assert asset is not None and asset.status == "active"
        assert {r.status for r in session.scalars(select(Route))} == {"active"}
        assert list(session.scalars(select(Alert))) == []


def test_tokens_sent_to_the_bridge_are_a_surplus_that_only_alerts(world: World) -> None:
    _asset(world)
    world.alpha.mint(world.alpha.bridge, 50)
    world.run("scan", "alpha")
    assert _supply(world).surplus == 50
    with world.session() as session:
        asset = session.scalar(select(Asset))
        assert asset is not None and asset.status == "active"
        alerts = list(session.scalars(select(Alert)))
        assert [a.kind for a in alerts] == ["supply_surplus"]
        assert alerts[0].at <= datetime.now(UTC)
