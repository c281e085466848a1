"""Thin, idempotent tasks named by namespace; each calls one relay step."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from redis import Redis
from redis.exceptions import RedisError

from hub.services.relay import steps
from hub.settings import Settings
from relayers import runtime

log = logging.getLogger("relayers")
SHORT = {"acks_late": True, "ignore_result": True}
# A step waits in its queue at most this long, and a pending mark outlives a lost task by at
# most this much.
PENDING_SECONDS = 30.0


@shared_task(name="relay.tick", **SHORT)
def tick() -> None:
    """Beat's heartbeat: fan out one step of every kind of work, each on its own queue, unless
    the same step is still waiting in its queue. Queues stay as short as the work, so a busy
    worker is never left with a backlog of stale steps (which expired unrun, forever)."""
    ctx = runtime.context()
    for chain in steps.active_chains(ctx):
        _once(scan, chain)
        _once(deliver, chain)
        _once(confirm, chain)
        _once(guard, chain)
    for symbol in steps.asset_symbols(ctx):
        _once(supply, symbol)
    for queue in ctx.settings.validator_queues:
        _once(attest, queue, queue=queue)


def _key(name: str, arg: str) -> str:
    return f"islands:pending:{name}:{arg}"


def _once(task: Any, arg: str, queue: str | None = None) -> None:
    if runtime.redis().set(_key(task.name, arg), "1", nx=True, ex=int(PENDING_SECONDS)):
        task.apply_async((arg,), queue=queue, expires=PENDING_SECONDS)


@worker_ready.connect
def _forget_pending(**_: Any) -> None:
    """A worker that died took the steps it had reserved with it, and their marks would keep
    beat from sending them again for up to PENDING_SECONDS. A worker that starts clears the
    marks: at worst a step is sent twice, which is harmless."""
    client = Redis.from_url(Settings().redis_url)
    try:
        marks = list(client.scan_iter(match=_key("*", "*")))
        if marks:
            client.delete(*marks)
    except RedisError as exc:
        log.warning("could not clear pending marks", extra={"error": str(exc)})
    finally:
        client.close()


def _again(task: Any, arg: str, result: object, queue: str | None = None) -> None:
    """A step that did work has likely left more (its batch was bounded): it is sent again
    at once rather than at the next tick, so work flows continuously under load. An idle
    step waits for the tick."""
    if (isinstance(result, int) and result > 0) or getattr(result, "busy", False):
        _once(task, arg, queue=queue)


def _started(name: str, arg: str) -> None:
    """The step runs now: the next tick may enqueue the next one."""
    runtime.redis().delete(_key(name, arg))


@shared_task(name="relay.scan", **SHORT)
def scan(chain: str) -> None:
    _started("relay.scan", chain)
    result = steps.guarded("scan", steps.scan, runtime.context(), chain)
    _again(scan, chain, result)
    if getattr(result, "finalized", 0):  # the validators have work now, not at the tick
        for queue in runtime.context().settings.validator_queues:
            _once(attest, queue, queue=queue)


@shared_task(name="relay.deliver", **SHORT)
def deliver(chain: str) -> None:
    _started("relay.deliver", chain)
    key = runtime.relayer_key()
    if key is None:
        log.error("relay.deliver needs HUB_RELAYER_KEY in this worker's environment")
        return
    result = steps.guarded("deliver", steps.deliver, runtime.context(), chain, key)
    _again(deliver, chain, result)
    if getattr(result, "sent", 0):
        _once(confirm, chain)


@shared_task(name="relay.confirm", **SHORT)
def confirm(chain: str) -> None:
    _started("relay.confirm", chain)
    key = runtime.relayer_key()
    if key is None:
        return
    result = steps.guarded("confirm", steps.confirm, runtime.context(), chain, key)
    _again(confirm, chain, result)


@shared_task(name="relay.guardian", **SHORT)
def guard(chain: str) -> None:
    _started("relay.guardian", chain)
    key = runtime.guardian_key()
    if key is None:
        return  # returns and rate limits wait for a worker that holds HUB_GUARDIAN_KEY
    steps.guarded("guardian", steps.guard, runtime.context(), chain, key)


@shared_task(name="relay.supply", **SHORT)
def supply(symbol: str) -> None:
    _started("relay.supply", symbol)
    steps.guarded("supply", steps.supply, runtime.context(), symbol)


@shared_task(name="validator.attest", **SHORT)
def attest(queue: str = "") -> None:
    _started("validator.attest", queue)
    validator = runtime.validator()
    if validator is None:
        log.error("validator.attest needs HUB_VALIDATOR_KEY in this worker's environment")
        return
    result = steps.guarded("attest", steps.attest, runtime.context(), validator)
    _again(attest, queue, result, queue=queue or None)
    if result:  # some messages may have reached their threshold: deliver now
        for chain in steps.active_chains(runtime.context()):
            _once(deliver, chain)
