"""Registering, changing and retiring chains, each checked against the chain itself first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from adapters.base import AdapterError, BlockRef, ChainAdapter, FinalityPolicy
from adapters.registry import UnknownFamilyError, create_adapter
from hub.db.models import Chain, Cursor, Message, Route
from hub.domain.errors import CheckFailedError, ConflictError, InvalidInputError, NotFoundError
from hub.domain.states import AlertKind, ChainStatus, MessageState, RouteStatus
from hub.services import alerts, audit
from hub.services.messages import lifecycle
from hub.services.netpolicy import NetworkPolicy, expand_env, redact_url


@dataclass(frozen=True)
class ChainSpec:
    name: str
    chain_id: int
    family: str
    rpc_urls: list[str]
    finality: FinalityPolicy
    gateway_address: str
    bridge_address: str


@dataclass(frozen=True)
class ChainChange:
    paused: bool | None = None
    reason: str | None = None
    rpc_urls: list[str] | None = None
    finality: FinalityPolicy | None = None


def adapter_for(
    family: str, rpc_urls: list[str], timeout: float, policy: NetworkPolicy | None
) -> ChainAdapter:
    """An adapter that connects to a chain's URLs with their ${HUB_RPC_SECRET_...} filled in
    and shows only their redacted forms. With a policy, each URL is checked now and every
    address at every connection; None only for a validator's own endpoints, which are its
    operator's choice, not a caller's."""
    if policy is not None:
        for url in rpc_urls:
            policy.check(url)
    options: dict[str, Any] = {"timeout": timeout, "shown_urls": [redact_url(u) for u in rpc_urls]}
    if policy is not None:
        options["address_guard"] = policy.refusal
    try:
        return create_adapter(family, [expand_env(u) for u in rpc_urls], **options)
    except UnknownFamilyError as exc:
        raise InvalidInputError(str(exc)) from None


def chain_adapter(chain: Chain, timeout: float, policy: NetworkPolicy) -> ChainAdapter:
    return adapter_for(chain.family, chain.rpc_urls, timeout, policy)


def get_chain(session: Session, name: str) -> Chain:
    chain = session.scalar(select(Chain).where(Chain.name == name))
    if chain is None:
        raise NotFoundError(f"no chain named {name!r}")
    return chain


def list_chains(session: Session, include_retired: bool = False) -> list[Chain]:
    query = select(Chain).order_by(Chain.id)
    if not include_retired:
        query = query.where(Chain.status != ChainStatus.RETIRED)
    return list(session.scalars(query))


def register_chain(
    session: Session, spec: ChainSpec, actor: str, policy: NetworkPolicy, timeout: float
) -> Chain:
    """Check everything first (names free, URLs allowed and on the declared chain, contracts
    deployed there), then write the chain and its audit entry."""
    _ensure_free(session, spec.name, spec.chain_id)
    adapter = adapter_for(spec.family, spec.rpc_urls, timeout, policy)
    gateway = _address(adapter, spec.gateway_address, "gateway_address")
    bridge = _address(adapter, spec.bridge_address, "bridge_address")
    verify_endpoints(adapter, spec.rpc_urls, spec.chain_id)
    verify_contract(adapter, gateway, "gateway", spec.chain_id)
    verify_contract(adapter, bridge, "bridge", spec.chain_id)
    final = verify_finality(adapter, spec.finality)
    head = adapter.head()
    chain = Chain(
        name=spec.name,
        chain_id=spec.chain_id,
        family=spec.family,
        rpc_urls=spec.rpc_urls,
        finality=str(spec.finality.as_value()),
        gateway_address=gateway,
        bridge_address=bridge,
        status=ChainStatus.ACTIVE,
    )
    session.add(chain)
    session.flush()
    # Messages are relayed from the block the hub started watching the chain at.
    session.add(
        Cursor(
            chain_key=chain.id,
            start_block=head.number,
            block_number=head.number,
            block_hash=head.hash,
            final_block=final.number,
            final_hash=final.hash,
        )
    )
    audit.record(session, actor, "chain.register", f"chain:{spec.name}", chain_id=spec.chain_id)
    return chain


def _ensure_free(session: Session, name: str, chain_id: int) -> None:
    taken = session.scalar(select(Chain).where(or_(Chain.name == name, Chain.chain_id == chain_id)))
    if taken is None:
        return
    retired = " (retired)" if taken.status == ChainStatus.RETIRED else ""
    if taken.name == name:
        raise ConflictError(f"a chain named {name!r} is already registered{retired}")
    raise ConflictError(
        f"chain id {chain_id} is already registered as {taken.name!r}{retired}",
        chain_id=chain_id,
        existing=taken.name,
    )


def _address(adapter: ChainAdapter, address: str, field: str) -> str:
    try:
        return adapter.normalize_address(address)
    except ValueError:
        raise InvalidInputError(
            f"{field} {address!r} is not a valid address", field=field
        ) from None


def verify_endpoints(adapter: ChainAdapter, rpc_urls: list[str], declared: int) -> None:
    """Every URL must answer, and with the declared chain id."""
    for url, report in zip(rpc_urls, adapter.probe_endpoints(), strict=True):
        shown = redact_url(url)
        if report.chain_id is None:
            raise CheckFailedError(f"RPC URL {shown} did not answer: {report.error}", rpc_url=shown)
        if report.chain_id != declared:
            raise CheckFailedError(
                f"RPC URL {shown} reports chain id {report.chain_id}, "
                f"but the registration declares chain id {declared}",
                rpc_url=shown,
                reported_chain_id=report.chain_id,
                declared_chain_id=declared,
            )


def verify_contract(adapter: ChainAdapter, address: str, role: str, declared: int) -> None:
    """The contract must have code and report the declared chain id."""
    try:
        if not adapter.code_at(address):
            raise CheckFailedError(
                f"no contract at {role} address {address} on chain {declared}", field=role
            )
        reported = adapter.contract_chain_id(address)
    except AdapterError as exc:
        raise CheckFailedError(f"could not read the {role} at {address}: {exc}") from None
    if reported != declared:
        raise CheckFailedError(
            f"the {role} at {address} reports chain id {reported}, "
            f"but the registration declares chain id {declared}",
            field=role,
            reported_chain_id=reported,
            declared_chain_id=declared,
        )


def verify_finality(adapter: ChainAdapter, policy: FinalityPolicy) -> BlockRef:
    try:
        return adapter.finalized_block(policy)
    except AdapterError as exc:
        raise CheckFailedError(
            f"the chain cannot answer its finality policy {policy.as_value()!r}: {exc}"
        ) from None


def update_chain(
    session: Session,
    chain: Chain,
    change: ChainChange,
    actor: str,
    policy: NetworkPolicy,
    timeout: float,
) -> Chain:
    """Pause, resume, or replace RPC URLs or finality; new URLs are checked like a registration."""
    if chain.status == ChainStatus.RETIRED:
        raise ConflictError(f"chain {chain.name!r} is retired")
    changed: dict[str, Any] = {}
    if change.rpc_urls is not None or change.finality is not None:
        urls = change.rpc_urls if change.rpc_urls is not None else chain.rpc_urls
        adapter = adapter_for(chain.family, urls, timeout, policy)
        verify_endpoints(adapter, urls, chain.chain_id)
        if change.finality is not None:
            verify_finality(adapter, change.finality)
            chain.finality = str(change.finality.as_value())
            changed["finality"] = chain.finality
        if change.rpc_urls is not None:
            chain.rpc_urls = change.rpc_urls
            changed["rpc_urls"] = [redact_url(u) for u in urls]
    resuming = change.paused is False and chain.status == ChainStatus.PAUSED
    if resuming and reanchor(session, chain, timeout, policy):
        changed["reanchored"] = True
    if change.paused is not None:
        chain.status = ChainStatus.PAUSED if change.paused else ChainStatus.ACTIVE
        chain.status_reason = change.reason if change.paused else None
        chain.status_by = actor if change.paused else None
        changed["status"] = chain.status
    if not changed:
        raise InvalidInputError("nothing to change: give paused, rpc_urls or finality")
    session.flush()
    audit.record(session, actor, "chain.update", f"chain:{chain.name}", **changed)
    return chain


REANCHOR_RESCAN = 500


def reanchor(session: Session, chain: Chain, timeout: float, policy: NetworkPolicy) -> bool:
    """Resuming a chain accepts its history as it is now. If the cursor's last final block is
    no longer canonical (a deep reorg paused the chain), scanning starts again a little below
    it on the new history: messages seen twice are recorded once, and ones the reorg removed
    are orphaned when their block no longer matches."""
    cursor = session.get(Cursor, chain.id)
    if cursor is None or not cursor.final_hash:
        return False
    adapter = chain_adapter(chain, timeout, policy)
    try:
        if adapter.block_hash(cursor.final_block) == cursor.final_hash:
            return False
        start = max(cursor.start_block, cursor.final_block - REANCHOR_RESCAN)
        start_hash = adapter.block_hash(start)
    except AdapterError as exc:
        raise CheckFailedError(f"could not read {chain.name} to resume it: {exc}") from None
    if start_hash is None:
        raise CheckFailedError(f"{chain.name} has no block {start} to resume from")
    cursor.block_number, cursor.block_hash = start, start_hash
    cursor.final_block, cursor.final_hash = start, start_hash
    alerts.resolve(session, AlertKind.DEEP_REORG, f"chain:{chain.name}")
    return True


def retire_chain(session: Session, chain: Chain, actor: str, reason: str | None) -> Chain:
    """Retire a chain and pause every route that touches it; the row stays for history."""
    if chain.status == ChainStatus.RETIRED:
        return chain
    chain.status = ChainStatus.RETIRED
    chain.status_reason = reason or "retired"
    chain.status_by = actor
    routes = session.scalars(
        select(Route).where(or_(Route.src_chain_key == chain.id, Route.dst_chain_key == chain.id))
    )
    for route in routes:
        route.status = RouteStatus.PAUSED
        route.status_reason = f"chain {chain.name} retired"
        route.status_by = actor
    rejected = _reject_waiting(session, chain)
    session.flush()
    audit.record(
        session, actor, "chain.retire", f"chain:{chain.name}", reason=reason, rejected=rejected
    )
    return chain


# Messages that wait for something a retired chain would have to do. A submitted one is on
# its way (its transaction decides), an observed one was never final.
_WAITING = (MessageState.FINALIZED, MessageState.ATTESTED, MessageState.FAILED)


def _reject_waiting(session: Session, chain: Chain) -> int:
    """Messages to or from a retired chain can never be relayed: they are rejected (with the
    reason), so they neither wait forever nor take a place in anyone's work."""
    waiting = session.scalars(
        select(Message)
        .where(
            or_(Message.dst_chain_id == chain.chain_id, Message.src_chain_id == chain.chain_id),
            Message.state.in_([s.value for s in _WAITING]),
        )
        .order_by(Message.id)
    )
    count = 0
    for message in waiting:
        lifecycle(session, message).reject(f"chain {chain.name} retired")
        count += 1
    return count


@dataclass(frozen=True)
class LiveStatus:
    reachable: bool
    head: int | None = None
    finalized: int | None = None
    error: str | None = None


def live_status(chain: Chain, timeout: float, policy: NetworkPolicy) -> LiveStatus:
    """Head and finalized block as the chain reports them now."""
    try:
        adapter = chain_adapter(chain, timeout, policy)
        head = adapter.head().number
        final = adapter.finalized_block(FinalityPolicy.parse(chain.finality)).number
    except (AdapterError, InvalidInputError) as exc:
        return LiveStatus(reachable=False, error=str(exc))
    return LiveStatus(reachable=True, head=head, finalized=final)
