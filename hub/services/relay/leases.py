"""Leases: a named lock in the database with an expiry, so one process at a time submits for a
chain and key, on Postgres and SQLite alike, and a dead holder's lease runs out.

Times are the database's clock, the one clock every process shares: a process whose own
clock jumps (or runs an hour off) must neither take a lease that is held nor leave one
behind that outlives it by the jump."""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.models import Lease, utcnow


def owner() -> str:
    """Who holds a lease: this thread of this process (read at call time: prefork children
    differ, and so do the threads of a thread-pool worker, which must not share a lease)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def db_now(session: Session) -> datetime:
    """Now, by the database's clock (SQLite is one process's file: its clock is ours)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalars(select(func.now())).one()
    return utcnow()


def acquire(session: Session, name: str, owner: str, seconds: float) -> bool:
    """Take or renew the lease; False while another owner holds it. Commit right after."""
    now = db_now(session)
    expires = now + timedelta(seconds=seconds)
    taken = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.expires_at < now, Lease.owner == owner))
        .values(owner=owner, expires_at=expires)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return True
    try:
        with session.begin_nested():
            session.add(Lease(name=name, owner=owner, expires_at=expires))
    except IntegrityError:
        return False
    return True


def release(session: Session, name: str, owner: str) -> None:
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.owner == owner)
        .values(expires_at=db_now(session))
    )
