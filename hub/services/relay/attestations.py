"""Attestations: validators sign final messages; the hub keeps a signature only after
recovering a signer of the destination gateway's current validator set."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from adapters.base import OutboxReader
from hub.db.models import Attestation, Chain, Message, ValidatorSet, utcnow
from hub.domain.attestation import attestation_digest, normalize_signature, recover_signer
from hub.domain.errors import ConflictError, InvalidInputError
from hub.domain.states import MessageState
from hub.services.messages import lifecycle, lifecycles

_S = MessageState
ATTESTABLE = frozenset({_S.FINALIZED, _S.ATTESTED, _S.SUBMITTED, _S.FAILED, _S.REJECTED})


def chain_by_chain_id(session: Session, chain_id: int) -> Chain | None:
    return session.scalar(select(Chain).where(Chain.chain_id == chain_id))


def refresh_validator_set(session: Session, chain: Chain, adapter: OutboxReader) -> ValidatorSet:
    """Read the gateway's set; when its epoch changed, attested messages must be signed again."""
    config = adapter.gateway_config(chain.gateway_address)
    current = session.get(ValidatorSet, chain.id)
    if current is None:
        current = ValidatorSet(chain_key=chain.id, epoch=config.epoch, threshold=0, validators=[])
        session.add(current)
    elif current.epoch != config.epoch:
        _unattest(session, chain, config.epoch)
    current.epoch, current.threshold = config.epoch, config.threshold
    current.validators = list(config.validators)
    current.updated_at = utcnow()
    return current


def _unattest(session: Session, chain: Chain, epoch: int) -> None:
    """Signatures of the old epoch no longer count: what waited to be delivered with them
    (attested, or failed with a retry pending; parked ones wait for an operator) goes back
    to be signed again."""
    stale = session.scalars(
        select(Message)
        .where(
            Message.dst_chain_id == chain.chain_id,
            or_(
                Message.state == _S.ATTESTED.value,
                and_(Message.state == _S.FAILED.value, Message.next_attempt_at.is_not(None)),
            ),
        )
        .order_by(Message.id)
    )
    for message in stale:
        lifecycle(session, message).unattest(epoch)


def validator_set(session: Session, dst: Chain) -> ValidatorSet:
    current = session.get(ValidatorSet, dst.id)
    if current is None:
        raise ConflictError(f"the validator set of {dst.name} has not been read yet; try again")
    return current


def record_attestation(session: Session, message: Message, signature: bytes) -> str:
    """Store a signature if it recovers to a member of the destination's current set;
    promote the message to attested at the threshold. Returns the signer. Posting a stored
    signature again is a no-op, in any state. What is stored is the form the gateway accepts
    (v 27/28), whatever form of a valid signature was posted."""
    try:
        signature = normalize_signature(signature)
    except ValueError as exc:
        raise InvalidInputError(f"signature: {exc}") from None
    dst = chain_by_chain_id(session, message.dst_chain_id)
    if dst is None:
        raise ConflictError(f"no registered chain has chain id {message.dst_chain_id}")
    vset = validator_set(session, dst)
    signer = _signer(message, dst, vset, signature)
    if _stored(session, message, signer, vset.epoch):
        return signer
    if MessageState(message.state) not in ATTESTABLE:
        raise ConflictError(f"message {message.id} is {message.state}: nothing to sign")
    try:
        with session.begin_nested():
            session.add(
                Attestation(
                    message_id=message.id,
                    validator=signer,
                    epoch=vset.epoch,
                    signature="0x" + signature.hex(),
                )
            )
    except IntegrityError:
        return signer  # the same signature arrived concurrently: one copy is enough
    if message.state == _S.FINALIZED and _count(session, message, vset.epoch) >= vset.threshold:
        lifecycle(session, message).attest(vset.threshold, len(vset.validators))
    return signer


def record_attestations(
    session: Session, signatures: dict[str, bytes], signed_here_by: str | None = None
) -> int:
    """`record_attestation` for a validator's batch: {message id: signature}. Each is stored
    only if it recovers to a member of its destination's current set and its message can be
    signed; those at the threshold are promoted together. Returns how many were stored.

    `signed_here_by`: the signatures were made in this process with the key of that address
    (a validator worker's own), so recovering each is skipped; the address must still be a
    member. The relay recovers every signature again before it delivers (`signatures_for`)."""
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.id.in_(list(signatures)))
            .order_by(Message.id)
            .options(lazyload("*"))
        )
    )
    rows, epochs = [], {}
    for message in messages:
        if MessageState(message.state) not in ATTESTABLE:
            continue
        dst = _destination(session, message.dst_chain_id)
        if dst is None:
            continue
        chain, vset = dst
        try:
            signature = normalize_signature(signatures[message.id])
            signer = (
                _signer(message, chain, vset, signature)
                if signed_here_by is None
                else _member(signed_here_by, chain, vset)
            )
        except InvalidInputError:
            continue
        epochs[message.id] = vset.epoch
        rows.append(
            Attestation(
                message_id=message.id,
                validator=signer,
                epoch=vset.epoch,
                signature="0x" + signature.hex(),
            )
        )
    if not _insert_all(session, rows):
        return sum(_insert_one(session, m, signatures[m.id]) for m in messages)
    _promote(session, [m for m in messages if m.id in epochs])
    return len(rows)


def _destination(session: Session, chain_id: int) -> tuple[Chain, ValidatorSet] | None:
    """A destination chain and its current set, read once per session."""
    cache: dict[int, tuple[Chain, ValidatorSet] | None] = session.info.setdefault(
        "destinations", {}
    )
    if chain_id not in cache:
        dst = chain_by_chain_id(session, chain_id)
        vset = session.get(ValidatorSet, dst.id) if dst is not None else None
        cache[chain_id] = (dst, vset) if dst is not None and vset is not None else None
    return cache[chain_id]


def _insert_all(session: Session, rows: list[Attestation]) -> bool:
    """All in one flush; False (nothing written) when one of them was stored meanwhile."""
    try:
        with session.begin_nested():
            session.add_all(rows)
    except IntegrityError:
        return False
    return True


def _insert_one(session: Session, message: Message, signature: bytes) -> int:
    try:
        record_attestation(session, message, signature)
    except (InvalidInputError, ConflictError):
        return 0
    return 1


def _promote(session: Session, messages: list[Message]) -> None:
    """Attest the finalized ones whose stored current-epoch signatures meet the threshold."""
    waiting = [m for m in messages if m.state == _S.FINALIZED]
    if not waiting:
        return
    query = (
        select(Attestation.message_id, func.count(Attestation.id))
        .join(Message, Message.id == Attestation.message_id)
        .join(Chain, Chain.chain_id == Message.dst_chain_id)
        .join(
            ValidatorSet,
            and_(ValidatorSet.chain_key == Chain.id, ValidatorSet.epoch == Attestation.epoch),
        )
        .where(Attestation.message_id.in_([m.id for m in waiting]))
        .group_by(Attestation.message_id)
    )
    counts = {message_id: int(n) for message_id, n in session.execute(query)}
    for chain_id in {m.dst_chain_id for m in waiting}:
        dst = _destination(session, chain_id)
        if dst is None or dst[1].threshold < 1:
            continue
        vset = dst[1]
        mine = [m for m in waiting if m.dst_chain_id == chain_id]
        ready = [m for m in mine if counts.get(m.id, 0) >= vset.threshold]
        _attest_all(session, ready, vset)


def _signer(message: Message, dst: Chain, vset: ValidatorSet, signature: bytes) -> str:
    digest = attestation_digest(
        bytes.fromhex(message.id[2:]), vset.epoch, dst.chain_id, dst.gateway_address
    )
    try:
        signer = recover_signer(digest, signature)
    except ValueError as exc:
        raise InvalidInputError(f"signature: {exc}") from None
    return _member(signer, dst, vset)


def _member(signer: str, dst: Chain, vset: ValidatorSet) -> str:
    if signer not in vset.validators:
        raise InvalidInputError(
            f"signer {signer} is not in the validator set of {dst.name} (epoch {vset.epoch})",
            signer=signer,
        )
    return signer


def _stored(session: Session, message: Message, signer: str, epoch: int) -> bool:
    return (
        session.scalar(
            select(Attestation.id).where(
                Attestation.message_id == message.id,
                Attestation.validator == signer,
                Attestation.epoch == epoch,
            )
        )
        is not None
    )


def _count(session: Session, message: Message, epoch: int) -> int:
    return int(
        session.scalar(
            select(func.count(Attestation.id)).where(
                Attestation.message_id == message.id, Attestation.epoch == epoch
            )
        )
        or 0
    )


def signatures_for(session: Session, messages: list[Message], dst: Chain) -> dict[str, list[bytes]]:
    """For each message, threshold-many signatures of the current epoch, ascending by signer,
    as the gateway requires (strictly ascending signers rule out duplicates). One query."""
    vset = validator_set(session, dst)
    members = {v.lower() for v in vset.validators}
    rows = session.scalars(
        select(Attestation).where(
            Attestation.message_id.in_([m.id for m in messages]), Attestation.epoch == vset.epoch
        )
    )
    by_message: dict[str, list[Attestation]] = {m.id: [] for m in messages}
    for row in rows:
        if row.validator.lower() in members:
            by_message[row.message_id].append(row)
    return {
        message_id: _verified(message_id, found, dst, vset)
        for message_id, found in by_message.items()
    }


def _verified(
    message_id: str, found: list[Attestation], dst: Chain, vset: ValidatorSet
) -> list[bytes]:
    """Threshold-many signatures that recover to their stated signer, ascending by signer.
    They were checked when stored; checking again (cheap, compiled) means a row that does
    not verify (written around the API) is passed over, never sent to make a delivery revert."""
    digest = attestation_digest(
        bytes.fromhex(message_id[2:]), vset.epoch, dst.chain_id, dst.gateway_address
    )
    good = []
    for row in sorted(found, key=lambda r: int(r.validator, 16)):
        signature = bytes.fromhex(row.signature[2:])
        try:
            if recover_signer(digest, signature).lower() == row.validator.lower():
                good.append(signature)
        except ValueError:
            continue
        if len(good) == vset.threshold:
            break
    return good


def promote_signed(session: Session, dst: Chain) -> int:
    """Attest every finalized message for `dst` whose stored signatures meet the threshold.

    Validators store signatures concurrently, each in its own transaction, so none of them
    may see the threshold reached; this sweep makes the state follow from the data."""
    vset = session.get(ValidatorSet, dst.id)
    if vset is None or vset.threshold < 1:
        return 0
    # Counted per waiting message (an index lookup each), not over the whole table.
    signatures = (
        select(func.count(Attestation.id))
        .where(Attestation.message_id == Message.id, Attestation.epoch == vset.epoch)
        .scalar_subquery()
    )
    ready = list(
        session.scalars(
            select(Message)
            .where(
                Message.dst_chain_id == dst.chain_id,
                Message.state == _S.FINALIZED.value,
                signatures >= vset.threshold,
            )
            .order_by(Message.id)
            .options(lazyload("*"))
        )
    )
    return len(_attest_all(session, ready, vset))


def _attest_all(session: Session, ready: list[Message], vset: ValidatorSet) -> list[Message]:
    """Move messages whose signatures meet the threshold to attested, together."""
    threshold, members = vset.threshold, len(vset.validators)
    return lifecycles(session, ready).move(lambda life, _m: life.attest(threshold, members))
