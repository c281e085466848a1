"""Leases: one holder at a time, and a holder is a thread of a process, so the threads of a
thread-pool relay worker (`-P threads`) never share a lease (two would sign the same nonces)."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from hub.services.relay import leases


def _owner_in_another_thread() -> str:
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.append(leases.owner()))
    thread.start()
    thread.join()
    return found[0]


def test_two_threads_of_one_process_are_two_owners(session: Session) -> None:
    mine, theirs = leases.owner(), _owner_in_another_thread()
    assert mine != theirs
    assert leases.acquire(session, "deliver:31338:0xabc", theirs, 30)
    assert not leases.acquire(session, "deliver:31338:0xabc", mine, 30)
    assert leases.acquire(session, "deliver:31338:0xabc", theirs, 30)  # renewed by its holder


def test_a_released_lease_is_taken_by_the_next(session: Session) -> None:
    first, second = leases.owner(), _owner_in_another_thread()
    assert leases.acquire(session, "scan:alpha", first, 30)
    leases.release(session, "scan:alpha", first)
    assert leases.acquire(session, "scan:alpha", second, 30)
