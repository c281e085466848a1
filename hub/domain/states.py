"""Status values and the transitions allowed between them.

Stored values are never renamed or removed, only added (see ARCHITECTURE.md).
"""

from __future__ import annotations

from enum import StrEnum

from hub.domain.errors import IllegalTransitionError


class ChainStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


class RouteStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class AssetStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class MessageState(StrEnum):
    OBSERVED = "observed"
    FINALIZED = "finalized"
    ATTESTED = "attested"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    ORPHANED = "orphaned"
    REJECTED = "rejected"
    # Given up by its recipient without being handled: a token bridge returned the transfer
    # to its sender on the source chain (a new message carries the tokens back).
    RETURNED = "returned"


class DeliveryTxStatus(StrEnum):
    """A delivery transaction's fate (`deliveries.status`)."""

    PENDING = "pending"  # recorded, sent or about to be; not mined yet
    SUPERSEDED = "superseded"  # replaced by a higher fee, may still be mined
    MINED = "mined"
    REVERTED = "reverted"  # mined, and the whole transaction reverted
    REPLACED = "replaced"  # another transaction of the same nonce was mined
    DROPPED = "dropped"  # the nonce was used by a transaction the hub did not record


# Still waiting for a receipt: counted in flight, followed by confirm.
OPEN_DELIVERY_TX = (DeliveryTxStatus.PENDING, DeliveryTxStatus.SUPERSEDED)


class AlertKind(StrEnum):
    """What an alert is about (`alerts.kind`)."""

    DEEP_REORG = "deep_reorg"
    STUCK_TX = "stuck_tx"
    SUPPLY_MISMATCH = "supply_mismatch"
    SUPPLY_SURPLUS = "supply_surplus"
    RELAYER_FUNDS = "relayer_funds"


class StatusBy(StrEnum):
    """Who paused something when it was not a person (`*.status_by`)."""

    SCANNER = "scanner"
    SUPPLY_WATCH = "supply-watch"


_MS = MessageState
# A delivery (or a return) seen on-chain wins from any live state: someone else may have
# relayed it, or returned it. Orphaned from any state before submitted: a deep reorg dropped
# the message's block, and nothing from a dropped block may be relayed.
_SETTLED = {_MS.DELIVERED, _MS.RETURNED}
MESSAGE_TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    _MS.OBSERVED: frozenset({_MS.FINALIZED, _MS.ORPHANED, _MS.REJECTED}),
    _MS.FINALIZED: frozenset({_MS.ATTESTED, _MS.REJECTED, _MS.ORPHANED, *_SETTLED}),
    # Back to finalized when the destination's validator set changes under it.
    # Failed from attested: its delivery would revert (seen in simulation), so it is set
    # aside with a backoff instead of blocking the messages behind it.
    _MS.ATTESTED: frozenset(
        {_MS.SUBMITTED, _MS.REJECTED, _MS.FINALIZED, _MS.FAILED, _MS.ORPHANED, *_SETTLED}
    ),
    _MS.SUBMITTED: frozenset({_MS.FAILED, _MS.ATTESTED, *_SETTLED}),
    # A failed message waiting out its backoff is sent again from failed.
    # Rejected from failed: its route went away (a chain retired) while it waited.
    _MS.FAILED: frozenset(
        {_MS.ATTESTED, _MS.SUBMITTED, _MS.FINALIZED, _MS.REJECTED, _MS.ORPHANED, *_SETTLED}
    ),
    _MS.REJECTED: frozenset({_MS.ATTESTED, _MS.FINALIZED, _MS.ORPHANED, *_SETTLED}),
    _MS.DELIVERED: frozenset(),
    _MS.ORPHANED: frozenset(),
    _MS.RETURNED: frozenset(),
}


def check_transition(current: MessageState, new: MessageState) -> None:
    """Refuse a transition the state machine does not allow."""
    if new not in MESSAGE_TRANSITIONS[current]:
        raise IllegalTransitionError(
            f"a message cannot go from {current.value} to {new.value}",
            current=current.value,
            requested=new.value,
        )
