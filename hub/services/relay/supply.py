"""Supply watch: what is locked at home must equal the wrapped supplies plus what is in flight.

Every chain is read at its settled block (min of the scan cursor and the final block the scan
promoted at), where the hub has recorded every message and delivery, so the check is exact:
locked - sum(wrapped) = sum of amounts whose source side happened and destination side not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session, lazyload

from adapters.base import AdapterError, ChainReader
from hub.db.models import Asset, Chain, Cursor, Message, Route, Transfer
from hub.domain.states import AlertKind, AssetStatus, MessageState, RouteStatus, StatusBy
from hub.services import alerts
from hub.services.relay.ports import Ports
from hub.services.routes import set_route_paused

log = logging.getLogger("hub.relay.supply")
AdapterOf = Callable[[Chain], ChainReader]
# A deficit pauses only if a second check, this long after the first, shows one too: a node
# can answer a read at block N with N+1's state while it mines (anvil does, under load), and
# one passing misreading must not stop the bridge. A real deficit does not go away.
CONFIRM_AFTER_SECONDS = 0.5


@dataclass
class SupplyCheck:
    symbol: str
    locked: int | None = None
    wrapped: dict[str, int | None] = field(default_factory=dict)
    in_flight: int = 0
    as_of: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def balanced(self) -> bool | None:
        if self.locked is None or any(v is None for v in self.wrapped.values()):
            return None
        return self.surplus == 0

    @property
    def surplus(self) -> int:
        """Locked at home minus what it backs (wrapped plus in flight); below 0 is a deficit."""
        wrapped = sum(v or 0 for v in self.wrapped.values())
        return (self.locked or 0) - wrapped - self.in_flight


def settled_blocks(session: Session, chains: list[Chain]) -> dict[int, int]:
    """chain id -> the block up to which the hub knows every message and delivery."""
    blocks = {}
    for chain in chains:
        cursor = session.get(Cursor, chain.id)
        if cursor is not None:
            blocks[chain.chain_id] = cursor.settled_block
    return blocks


def check_asset(session: Session, asset: Asset, adapter_of: AdapterOf) -> SupplyCheck:
    home = asset.home_chain
    chains = [home, *(d.chain for d in asset.deployments)]
    blocks = settled_blocks(session, chains)
    check = SupplyCheck(asset.symbol, as_of={c.name: blocks.get(c.chain_id, 0) for c in chains})
    try:
        check.locked = adapter_of(home).token_balance(
            asset.home_token, home.bridge_address, block=blocks.get(home.chain_id)
        )
    except AdapterError as exc:
        check.errors[home.name] = str(exc)
    for dep in asset.deployments:
        try:
            check.wrapped[dep.chain.name] = adapter_of(dep.chain).token_supply(
                dep.token_address, block=blocks.get(dep.chain.chain_id)
            )
        except AdapterError as exc:
            check.wrapped[dep.chain.name] = None
            check.errors[dep.chain.name] = str(exc)
    check.in_flight = in_flight(session, asset, blocks)
    _unless_reorged(session, home, chains, adapter_of, check)
    return check


def _unless_reorged(
    session: Session, home: Chain, chains: list[Chain], adapter_of: AdapterOf, check: SupplyCheck
) -> None:
    """A chain read at a settled block the chain has since replaced (a deep reorg the scan
    has not seen yet) gives no answer this time: its figures no longer match the hub's."""
    for chain in chains:
        cursor = session.get(Cursor, chain.id)
        if cursor is None or chain.name in check.errors:
            continue  # a chain that could not be read keeps its own error
        number, expected = (
            (cursor.block_number, cursor.block_hash)
            if cursor.block_number <= cursor.final_block
            else (cursor.final_block, cursor.final_hash)
        )
        try:
            actual = adapter_of(chain).block_hash(number)
        except AdapterError as exc:
            check.errors[chain.name] = str(exc)
        else:
            if actual == expected:
                continue
            check.errors[chain.name] = f"block {number} changed under the check (a reorg?)"
        if chain is home:
            check.locked = None
        else:
            check.wrapped[chain.name] = None


def in_flight(session: Session, asset: Asset, blocks: dict[int, int]) -> int:
    """Amounts whose source side (lock or burn) is in the read blocks and whose destination
    side (mint or release) is not. A returned transfer's destination side is its return's
    arrival back at the source; the return itself locks or burns nothing, so it counts 0."""
    # A transfer delivered at or below its destination's settled block, and sent at or below
    # its source's, contributes nothing: leave those out, so the work stays bounded. (Both
    # sides: a resumed chain's cursor goes back below messages delivered long ago.)
    dst_settled = [
        and_(Message.dst_chain_id == chain_id, Message.dst_block_number <= block)
        for chain_id, block in blocks.items()
    ]
    src_settled = [
        and_(Message.src_chain_id == chain_id, Message.src_block_number <= block)
        for chain_id, block in blocks.items()
    ]
    done = and_(
        Message.state == MessageState.DELIVERED.value,
        or_(false(), *dst_settled),
        or_(false(), *src_settled),
    )
    rows = session.execute(
        select(Transfer.amount, Message)
        .join(Message, Transfer.message_id == Message.id)
        .where(
            Transfer.asset_id == asset.id,
            Transfer.returns_message_id.is_(None),
            Message.state != MessageState.ORPHANED.value,
            ~done,
        )
        .options(lazyload("*"))  # the rows alone: not each message's timeline and signatures
    ).all()
    returned = _returns_of(session, [m.id for _, m in rows if m.state == MessageState.RETURNED])
    total = 0
    for amount, message in rows:
        src_done = message.src_block_number <= blocks.get(message.src_chain_id, -1)
        arrival = returned.get(message.id) if message.state == MessageState.RETURNED else message
        total += int(amount) * (int(src_done) - int(_arrived(arrival, blocks)))
    return total


def _arrived(message: Message | None, blocks: dict[int, int]) -> bool:
    """Delivered at or below its destination's settled block."""
    return (
        message is not None
        and message.state == MessageState.DELIVERED.value
        and message.dst_block_number is not None
        and message.dst_block_number <= blocks.get(message.dst_chain_id, -1)
    )


def _returns_of(session: Session, ids: list[str]) -> dict[str, Message]:
    """Returned transfer id -> the message carrying its tokens back."""
    if not ids:
        return {}
    rows = session.execute(
        select(Transfer.returns_message_id, Message)
        .join(Message, Transfer.message_id == Message.id)
        .where(Transfer.returns_message_id.in_(ids))
    ).all()
    return {str(original): message for original, message in rows}


def supply(session: Session, asset: Asset, ports: Ports) -> SupplyCheck:
    """The supply stage on one asset."""
    return watch_asset(session, asset, ports.adapter)


def watch_asset(session: Session, asset: Asset, adapter_of: AdapterOf) -> SupplyCheck:
    """Check an asset. A deficit (more wrapped and in flight than locked: tokens without
    backing) pauses it and the routes between its chains, and raises an alert. A surplus (more
    locked than wrapped and in flight: anyone can send tokens to the bridge) is only an alert,
    so a donation cannot stop anything."""
    check = check_asset(session, asset, adapter_of)
    subject = f"asset:{asset.symbol}"
    if check.balanced is None:
        return check
    surplus = check.surplus
    if surplus > 0:
        alerts.raise_alert(
            session,
            AlertKind.SUPPLY_SURPLUS,
            subject,
            f"{surplus} more locked at home than wrapped plus in flight: tokens were sent to "
            f"the bridge outside a transfer (at blocks {check.as_of}); nothing is paused",
        )
    elif surplus == 0:
        alerts.resolve(session, AlertKind.SUPPLY_SURPLUS, subject)
    elif asset.status == AssetStatus.ACTIVE:
        again = _checked_again(session, asset, adapter_of)
        if again.balanced is False and again.surplus < 0:
            _pause_for_deficit(session, asset, again)
        else:
            log.warning("supply deficit not confirmed", extra={"asset": asset.symbol})
        return again
    return check


def _checked_again(session: Session, asset: Asset, adapter_of: AdapterOf) -> SupplyCheck:
    """The chains read again, at the same blocks as the first check (the session holds its
    cursors), a moment later."""
    time.sleep(CONFIRM_AFTER_SECONDS)
    return check_asset(session, asset, adapter_of)


def _pause_for_deficit(session: Session, asset: Asset, check: SupplyCheck) -> None:
    wrapped = sum(v or 0 for v in check.wrapped.values())
    reason = (
        f"supply mismatch: locked {check.locked} at home, wrapped {wrapped} "
        f"plus in flight {check.in_flight} (at blocks {check.as_of}): "
        f"{-check.surplus} without backing"
    )
    asset.status, asset.status_reason = AssetStatus.PAUSED, reason
    pause_routes(session, asset, f"supply mismatch of {asset.symbol}")
    alerts.raise_alert(session, AlertKind.SUPPLY_MISMATCH, f"asset:{asset.symbol}", reason)
    log.error("supply mismatch", extra={"asset": asset.symbol, "detail": reason})


def pause_routes(session: Session, asset: Asset, reason: str) -> None:
    """Pause every active route between the asset's chains."""
    keys = {asset.home_chain_key, *(d.chain_key for d in asset.deployments)}
    for route in session.scalars(
        select(Route).where(Route.src_chain_key.in_(keys), Route.dst_chain_key.in_(keys))
    ):
        if route.status == RouteStatus.ACTIVE:
            set_route_paused(session, route, True, StatusBy.SUPPLY_WATCH, reason)
