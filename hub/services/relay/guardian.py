"""The guardian's work on one chain's token bridge, with the guardian key (`HUB_GUARDIAN_KEY`):
return the transfers an operator asked to return, and make the bridge's rate limits agree
with the ones admins set over the API. The API only records what is wanted; this stage does
it, so nothing waits in a request and nothing is lost when a process dies.

Each round reads the chain first and does only what is not done yet; while one of the
guardian's transactions is still pending on the chain, it waits. So a crash or a lost
transaction costs a round, never a double action (and a second return of one transfer would
be refused on-chain anyway)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from eth_account import Account
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from adapters.base import (
    AdapterError,
    BridgeOperator,
    ChainAdapter,
    RateLimit,
    SignedTx,
    SimulationError,
    Submitter,
)
from hub.db.models import Asset, Chain, Message, Route, RouteLimit, Transfer, utcnow
from hub.domain.states import ChainStatus, MessageState
from hub.services.relay.deliver import signed_batch
from hub.services.relay.ports import Ports

log = logging.getLogger("hub.relay.guardian")
RETURNS_PER_ROUND = 10


@dataclass
class GuardianReport:
    chain: str
    returns_sent: int = 0
    limits_sent: int = 0
    note: str | None = None
    # what the runner does once the stage's transaction is committed: send what it recorded
    after_commit: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    @property
    def busy(self) -> bool:
        return bool(self.returns_sent or self.limits_sent)


class _Sender:
    """The guardian account on one chain: nonces counted locally within a round."""

    def __init__(self, adapter: ChainAdapter, key: str) -> None:
        self.adapter, self.key = adapter, key
        self.address = str(Account.from_key(key).address)
        self._nonce: int | None = None

    def in_flight(self) -> bool:
        """Whether a transaction of the guardian's is sent and not mined yet."""
        mined = self.adapter.account_nonce(self.address)
        self._nonce = self.adapter.account_nonce(self.address, pending=True)
        return self._nonce > mined

    def next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self.adapter.account_nonce(self.address, pending=True)
        self._nonce += 1
        return self._nonce - 1


def guard(session: Session, chain: Chain, ports: Ports) -> GuardianReport:
    """The guardian stage on one chain (one guardian per chain: the runner holds the lease).
    Its transactions are recorded here and sent once the runner committed them."""
    report = GuardianReport(chain.name)
    if chain.status == ChainStatus.RETIRED:
        return report
    adapter = ports.adapter(chain)
    if not isinstance(adapter, BridgeOperator):
        report.note = f"the {chain.family} adapter cannot operate a token bridge"
        return report
    sender = _Sender(adapter, ports.key("guardian"))
    if sender.in_flight():
        report.note = "a guardian transaction is still pending"
        return report
    sent = [*_returns(session, chain, adapter, sender, report)]
    sent += _limits(session, chain, adapter, sender, report)
    if sent:
        report.after_commit = partial(_send_all, adapter, sent)
    return report


def _send_all(adapter: Submitter, sent: list[SignedTx]) -> None:
    for tx in sent:
        _send(adapter, tx)


def _send(adapter: Submitter, tx: SignedTx) -> None:
    try:
        adapter.send_raw(tx.raw)
    except AdapterError as exc:  # the next round finds it not done and does it again
        log.warning("guardian transaction not sent", extra={"tx": tx.tx_hash, "error": str(exc)})


# -- returns -----------------------------------------------------------------------------


def _returns(
    session: Session,
    chain: Chain,
    adapter: BridgeOperator,
    sender: _Sender,
    report: GuardianReport,
) -> list[SignedTx]:
    """Return what operators asked to return, to its sender on the source chain."""
    wanted = session.scalars(
        select(Transfer)
        .join(Message, Transfer.message_id == Message.id)
        .where(
            Message.dst_chain_id == chain.chain_id,
            Transfer.return_requested_at.is_not(None),
            Message.state.not_in([MessageState.DELIVERED, MessageState.RETURNED]),
        )
        .order_by(Transfer.return_requested_at)
        .limit(RETURNS_PER_ROUND)
    )
    sent = []
    for transfer in wanted:
        tx = _return_one(session, chain, adapter, sender, transfer)
        if tx is not None:
            sent.append(tx)
            report.returns_sent += 1
    return sent


def _return_one(
    session: Session,
    chain: Chain,
    adapter: BridgeOperator,
    sender: _Sender,
    transfer: Transfer,
) -> SignedTx | None:
    if transfer.return_tx_hash is not None:
        receipt = sender.adapter.receipt(transfer.return_tx_hash)
        if receipt is not None and receipt.success:
            return None  # done; the scan settles the message when it reads that block
        if receipt is not None:
            transfer.return_error = f"the return transaction {receipt.tx_hash} reverted"
            transfer.return_requested_at = None  # an operator asks again once it is explained
            return None
    (signed,) = signed_batch(session, chain, [transfer.message])
    try:
        gas = adapter.simulate_return_to_sender(chain.bridge_address, signed, sender.address)
        fee = sender.adapter.fee_quote()
        tx = adapter.sign_return_to_sender(
            chain.bridge_address, signed, sender.key, sender.next_nonce(), fee, gas
        )
    except SimulationError as exc:
        transfer.return_error = f"returnToSender would revert: {exc.reason or exc}"
        return None
    transfer.return_tx_hash, transfer.return_sent_at = tx.tx_hash, utcnow()
    transfer.return_error = None
    log.info("return sent", extra={"message_id": transfer.message_id, "tx": tx.tx_hash})
    return tx


# -- rate limits -------------------------------------------------------------------------


def _limits(
    session: Session,
    chain: Chain,
    adapter: BridgeOperator,
    sender: _Sender,
    report: GuardianReport,
) -> list[SignedTx]:
    """Make this chain's bridge hold the limits admins set for the routes that touch it:
    outbound where it is the source, inbound where it is the destination."""
    rows = session.scalars(
        select(RouteLimit)
        .join(Route, RouteLimit.route_id == Route.id)
        .where(or_(Route.src_chain_key == chain.id, Route.dst_chain_key == chain.id))
        .order_by(RouteLimit.id)
    )
    sent = []
    for row in rows:
        for limit in bridge_limits(row, chain):
            tx = _apply(chain, adapter, sender, row, limit)
            if tx is not None:
                sent.append(tx)
                report.limits_sent += 1
    return sent


def bridge_limits(row: RouteLimit, chain: Chain) -> list[RateLimit]:
    """The bucket(s) `chain`'s bridge must hold for this route limit."""
    route, found = row.route, []
    token = local_token(row.asset, chain)
    if token is None:
        row.last_error = f"{row.asset.symbol} has no token on {chain.name}"
        return []
    for outbound, remote in ((True, route.dst), (False, route.src)):
        if (route.src if outbound else route.dst).id != chain.id:
            continue
        found.append(
            RateLimit(
                remote_chain_id=remote.chain_id,
                token=token,
                outbound=outbound,
                capacity=int(row.capacity),
                refill_per_second=int(row.refill_per_second),
            )
        )
    return found


def local_token(asset: Asset, chain: Chain) -> str | None:
    """The asset's token on a chain: the home token at home, else its wrapped deployment."""
    if asset.home_chain_key == chain.id:
        return asset.home_token
    return next((d.token_address for d in asset.deployments if d.chain_key == chain.id), None)


def _apply(
    chain: Chain,
    adapter: BridgeOperator,
    sender: _Sender,
    row: RouteLimit,
    limit: RateLimit,
) -> SignedTx | None:
    held = adapter.rate_limit(
        chain.bridge_address, limit.remote_chain_id, limit.token, limit.outbound
    ).limit
    if (held.capacity, held.refill_per_second) == (limit.capacity, limit.refill_per_second):
        return None
    try:
        gas = adapter.simulate_set_rate_limit(chain.bridge_address, limit, sender.address)
        fee = sender.adapter.fee_quote()
        tx = adapter.sign_set_rate_limit(
            chain.bridge_address, limit, sender.key, sender.next_nonce(), fee, gas
        )
    except SimulationError as exc:
        row.last_error = f"setRateLimit on {chain.name} would revert: {exc.reason or exc}"
        return None
    row.last_tx, row.last_tx_at, row.last_error = tx.tx_hash, utcnow(), None
    return tx
